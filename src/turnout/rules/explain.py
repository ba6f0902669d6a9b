"""Human-readable explanation of a rule-based decision, and a one-call dry run from a config.

Used by ``turnout route --config FILE``: :func:`route_with_config` loads the gateway YAML,
builds the route's :class:`RuleRouter` exactly as the gateway does and routes one prompt;
:func:`explanation_lines` turns the decision into lines of text.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from turnout.errors import UnknownModelError
from turnout.features import route_request_from_chat
from turnout.router import Router
from turnout.rules.routes import rule_router_for_route
from turnout.signals.signals import parse_tier
from turnout.types import RouteDecision

__all__ = ["explanation_lines", "route_with_config"]


def route_with_config(
    config_path: str | Path,
    prompt: str,
    *,
    route: str = "auto",
    tier: str | None = None,
    metadata: Mapping[str, str] | None = None,
    image_url: str | None = None,
    base: Router | None = None,
) -> RouteDecision:
    """Route one prompt with a route of a gateway config, without calling any model.

    Args:
        config_path: The gateway YAML (``turnout.yaml``).
        prompt: The user message.
        route: The route alias.
        tier: As the ``x-turnout-tier`` header would set it.
        metadata: As the caller key's metadata would set it (e.g. ``{"team": "support"}``).
        image_url: Attach an image part with this URL (to exercise image rules).
        base: The route's router, if already built; ``None`` builds it as the gateway does:
            from the route's ``router_file`` if it has one (trusted files only: it runs
            pickle), else the route's policy over catalog priors.

    Returns:
        The decision, with ``signals`` and ``rule`` filled in if the route has rules.

    Raises:
        ConfigError: If the file, the route or its rules are invalid.
        UnknownModelError: If ``route`` is not a route alias of the file.
        InvalidRequestError: If ``tier`` is not ``interactive`` or ``batch``.
        NoEligibleModelError: If constraints remove every candidate.
    """
    from turnout.config import load_config
    from turnout.rules.engine import build_policy

    config = load_config(config_path)
    if route not in config.routes:
        raise UnknownModelError(route)
    entry = config.routes[route]
    catalog = config.catalog()
    content: Any = prompt
    if image_url is not None:
        content = [
            {"type": "text", "text": prompt},
            {"type": "image_url", "image_url": {"url": image_url}},
        ]
    body = {"model": route, "messages": [{"role": "user", "content": content}]}
    c = entry.constraints
    request = route_request_from_chat(
        body,
        max_cost_usd=c.max_cost_usd,
        max_latency_s=c.max_latency_s,
        max_ttft_s=c.max_ttft_s,
        tier=parse_tier(tier) or c.tier,
        metadata=metadata,
    )
    if base is None and entry.router_file:
        from turnout.artifact import load_router

        explicit = (
            entry.model_fields_set
        )  # as the gateway: a saved policy unless the route sets one
        base = load_router(
            entry.router_file,
            catalog=catalog,
            candidates=entry.candidates,
            policy=build_policy(entry.policy, entry.params) if "policy" in explicit else None,
            random_state=entry.random_state if "random_state" in explicit else None,
        )
    rules = rule_router_for_route(
        route,
        entry,
        catalog,
        base=base,
        default_tier=c.tier,
        served=set(config.deployments_by_model()),
    )
    if rules is not None:
        return rules.route(request, body=body, route=route)
    router = base or Router(
        catalog,
        entry.candidates,
        build_policy(entry.policy, entry.params),
        random_state=entry.random_state,
        name=route,
    )
    return router.route(request, route=route)


def _signals_line(s: Mapping[str, Any]) -> str:
    meta = ", ".join(f"{k}={v}" for k, v in sorted(s.get("metadata", {}).items())) or "-"
    return (
        f"signals: category={s['category']} ({s['category_confidence']:.2f})  "
        f"difficulty={s['difficulty']:.2f}  language={s['language']}  "
        f"tier={s['tier'] or '-'}  input_tokens={s['input_tokens']}  "
        f"depth={s['conversation_depth']}  modalities={'+'.join(s['modalities'])}  "
        f"tools={'yes' if s['tools'] else 'no'}  "
        f"json={'yes' if s['structured_output'] else 'no'}  metadata={meta}"
    )


def explanation_lines(decision: RouteDecision) -> list[str]:
    """The decision in words.

    Signals, the rule and why earlier rules did not match, removed candidates, ranked
    candidates with their scores, and the choice.

    Args:
        decision: A decision (from a rule router or a plain router).

    Returns:
        Lines of text, without trailing newlines.
    """
    lines = []
    if decision.signals:
        lines.append(_signals_line(decision.signals))
    rule = decision.rule
    if rule:
        matched = rule.get("matched")
        label = f"{matched} (rule {rule['index']})" if matched else "none (route default)"
        lines.append(f"rule: {label}: {rule.get('description', '')}".rstrip(": "))
        for miss in rule.get("not_matched", []):
            lines.append(f"  skipped {miss['rule']}: {'; '.join(miss['reasons'])}")
        lines.append(f"  candidates: {', '.join(rule['candidates'])}; policy: {rule['policy']}")
    for removal in decision.removed:
        lines.append(f"removed {removal.model}: {removal.reason}")
    lines.append("ranked: model  predicted_quality  cost_usd (estimated)  latency_s  score")
    for c in decision.candidates:
        cost = "unpriced" if c.cost_usd is None else f"{c.cost_usd:.6f}"
        lines.append(
            f"  {c.model}  {c.predicted_quality:.3f}  {cost}  {c.latency_s:.2f}  {c.score:.4g}"
        )
    lines.append(f"chosen: {decision.model} ({decision.policy}: {decision.reason})")
    return lines
