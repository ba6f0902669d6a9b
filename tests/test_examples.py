"""Every ``# example:`` comment in ``examples/*.yaml`` routes as the comment says."""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from turnout import route_request_from_chat
from turnout.config import load_config
from turnout.rules import RuleRouter, rule_router_for_route

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
_EXAMPLE = re.compile(
    r'#\s*example(?:\s*\[(?P<opts>[^\]]*)\])?:\s*"(?P<prompt>.*)"\s*->\s*(?P<model>\S+)'
)
_RULE = re.compile(r"^\s*-\s*name:\s*(?P<name>\S+)")


@dataclass(frozen=True)
class Example:
    file: str
    line: int
    rule: str
    prompt: str
    options: tuple[str, ...]
    model: str


def _examples(path: Path) -> list[Example]:
    out: list[Example] = []
    pending: list[tuple[int, re.Match[str]]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if m := _EXAMPLE.search(line):
            pending.append((number, m))
        elif m := _RULE.match(line):
            for n, ex in pending:
                out.append(
                    Example(
                        path.name,
                        n,
                        m["name"],
                        ex["prompt"],
                        tuple((ex["opts"] or "").split()),
                        ex["model"],
                    )
                )
            pending = []
    assert not pending, f"{path.name}: example comments after the last rule"
    return out


CONFIGS = sorted(p for p in EXAMPLES.glob("*.yaml") if "# example" in p.read_text("utf-8"))
EXAMPLE_CASES = [ex for path in CONFIGS for ex in _examples(path)]


def _routers(path: Path) -> dict[str, tuple[RuleRouter, str | None]]:
    config = load_config(path)
    catalog = config.catalog()
    served = set(config.deployments_by_model())
    out = {}
    for alias, route in config.routes.items():
        router = rule_router_for_route(
            alias, route, catalog, default_tier=route.constraints.tier, served=served
        )
        if router is not None:
            out[alias] = (router, route.constraints.tier)
    return out


def _request(ex: Example) -> tuple[dict[str, Any], Any]:
    content: Any = ex.prompt
    if "image" in ex.options:
        content = [
            {"type": "text", "text": ex.prompt},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ]
    body = {"model": "auto", "messages": [{"role": "user", "content": content}]}
    opts = dict(o.split("=", 1) for o in ex.options if "=" in o)
    metadata = {k: v for k, v in opts.items() if k != "tier"}
    return body, route_request_from_chat(body, tier=opts.get("tier"), metadata=metadata)


def test_every_example_config_has_examples_for_every_rule() -> None:
    assert CONFIGS, "no example config with # example comments"
    for path in CONFIGS:
        examples = _examples(path)
        rules = {
            m["name"] for line in path.read_text("utf-8").splitlines() if (m := _RULE.match(line))
        }
        assert rules == {ex.rule for ex in examples}, f"{path.name}: a rule has no example"


@pytest.mark.parametrize(
    "example", EXAMPLE_CASES, ids=[f"{e.file}:{e.line}:{e.rule}" for e in EXAMPLE_CASES]
)
def test_example_routes_as_its_comment_says(example: Example) -> None:
    routers = _routers(EXAMPLES / example.file)
    assert len(routers) == 1, "examples assume one route with rules per file"
    ((router, _tier),) = routers.values()
    body, request = _request(example)
    decision = router.route(request, body=body, route="auto")
    assert decision.rule["matched"] == example.rule, (decision.signals, decision.rule)
    assert decision.model == example.model, decision.to_dict()
