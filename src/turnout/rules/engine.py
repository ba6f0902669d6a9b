"""Rule-based routing: signals -> the first matching rule -> that rule's router -> decision.

:class:`RuleRouter` is built once per route (validation happens then, naming each bad field
path and value) and holds one :class:`turnout.Router` per rule, so routing a request costs
one signals computation, one rule scan and one ``Router.route``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from turnout.catalog import Catalog, format_validation_error
from turnout.errors import ConfigError
from turnout.policies import POLICIES
from turnout.policies.base import Policy
from turnout.predictors.base import OutputLengthPredictor, QualityPredictor
from turnout.router import Router
from turnout.rules.matcher import RuleMatch, match_rules, shadowing_rule
from turnout.rules.spec import RuleSpec
from turnout.signals.classifier import CategoryClassifier
from turnout.signals.signals import Signals, compute_signals
from turnout.types import RouteDecision, RouteRequest

__all__ = ["RuleRouter", "build_policy", "check_rules", "parse_rules"]

# A rule that matches only requests with X needs a candidate with capability Y.
_NEEDS = (("images", "vision"), ("tools", "tools"), ("structured_output", "json_schema"))


def build_policy(name: str, params: Mapping[str, Any] | None = None) -> Policy:
    """Construct a registered policy.

    Raises:
        ConfigError: If ``name`` is not in ``POLICIES`` or ``params`` do not fit it.
    """
    cls = POLICIES.get(name)
    if cls is None:
        raise ConfigError(f"unknown policy {name!r}; known: {sorted(POLICIES)}", field="policy")
    try:
        policy: Policy = cls(**dict(params or {}))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"policy {name!r}: {exc} (got {dict(params or {})!r})") from exc
    return policy


def _check_one(
    rule: RuleSpec,
    path: str,
    catalog: Catalog,
    route_candidates: Sequence[str],
    served: Collection[str] | None,
) -> list[str]:
    problems = []
    for j, model in enumerate(rule.candidates or ()):
        if model not in catalog:
            problems.append(f"{path}.candidates.{j}: model {model!r} is not in the catalog")
        elif served is not None and model not in served:
            problems.append(f"{path}.candidates.{j}: no enabled deployment serves model {model!r}")
    if rule.policy is not None:
        try:
            build_policy(rule.policy, rule.params)
        except ConfigError as exc:
            field = "policy" if rule.policy not in POLICIES else "params"
            problems.append(f"{path}.{field}: {exc}")
    models = [m for m in (rule.candidates or route_candidates) if m in catalog]
    for flag, capability in _NEEDS:
        if (
            getattr(rule.when, flag) is True
            and models
            and not any(capability in catalog[m].capabilities for m in models)
        ):
            problems.append(
                f"{path}.candidates: no candidate has capability {capability!r}, but the rule "
                f"matches only requests with when.{flag}: true (got {models})"
            )
    return problems


def check_rules(
    raw: Sequence[Mapping[str, Any]],
    *,
    catalog: Catalog,
    route_candidates: Sequence[str],
    path: str = "rules",
    served: Collection[str] | None = None,
) -> tuple[list[RuleSpec], list[str]]:
    """Validate rules and report every problem at once.

    Checks the schema (unknown keys, unknown category or language names, empty lists, empty
    or out-of-domain ranges), unique names, candidates in the catalog, policies in
    ``POLICIES`` with parameters they accept, rules shadowed by an earlier rule (a catch-all
    included) and rules whose conditions need a capability no candidate has.

    Args:
        raw: The rules as read from YAML.
        catalog: Model cards the candidates must be in.
        route_candidates: The route's candidates (for rules that leave them out).
        path: Dotted path of the rules list, for messages (e.g. ``"routes.auto.rules"``).
        served: Model ids some enabled deployment serves (the gateway); ``None`` skips that
            check.

    Returns:
        The parsed rules (those that parsed) and the problems, each
        ``"dotted.path: what is wrong (got value)"``.
    """
    rules: list[RuleSpec] = []
    problems: list[str] = []
    positions: list[int] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw):
        try:
            rule = RuleSpec.model_validate(item)
        except ValidationError as exc:
            problems += format_validation_error(exc, prefix=f"{path}.{i}")
            continue
        if rule.name in seen:
            problems.append(
                f"{path}.{i}.name: duplicate rule name {rule.name!r} "
                f"(also {path}.{seen[rule.name]})"
            )
        seen.setdefault(rule.name, i)
        problems += _check_one(rule, f"{path}.{i}", catalog, route_candidates, served)
        rules.append(rule)
        positions.append(i)
    for k in range(len(rules)):
        earlier = shadowing_rule(rules, k)
        if earlier is not None:
            what = "catch-all " if rules[earlier].when.is_catch_all else ""
            problems.append(
                f"{path}.{positions[k]}.when: rule {rules[k].name!r} can never match: the "
                f"earlier {what}rule {rules[earlier].name!r} ({path}.{positions[earlier]}) "
                f"takes every request it would"
            )
    return rules, problems


def parse_rules(
    raw: Sequence[Mapping[str, Any]],
    *,
    catalog: Catalog,
    route_candidates: Sequence[str],
    path: str = "rules",
    served: Collection[str] | None = None,
) -> list[RuleSpec]:
    """Validate rules (see :func:`check_rules`).

    Raises:
        ConfigError: Listing every problem, each naming its field path and bad value.
    """
    rules, problems = check_rules(
        raw, catalog=catalog, route_candidates=route_candidates, path=path, served=served
    )
    if problems:
        raise ConfigError(
            "invalid rules:\n  " + "\n  ".join(problems), field=problems[0].split(":")[0]
        )
    return rules


def _stricter(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


class RuleRouter:
    """Routes with ordered declarative rules in front of per-rule routers.

    Args:
        catalog: Model cards.
        rules: Validated rules (see :func:`parse_rules`), first match wins.
        candidates: The route's candidates (for rules that leave them out, and when no
            rule matches).
        policy: The route's policy: a name in ``POLICIES`` (built with ``params``) or a
            policy object (e.g. the one a router file saved).
        params: The route's policy parameters (only with a policy name).
        predictor: Quality predictor shared by every rule's router (``None``: priors).
        length_predictor: Output-length predictor shared likewise.
        random_state: Seed shared by every rule's router (never derived from rule names, so
            renaming a rule never changes a decision).
        default_tier: Tier of requests that send no ``x-turnout-tier`` header.
        classifier: Category classifier; ``None`` uses the shipped one.

    Raises:
        ConfigError: If a policy or its parameters are invalid.
        UnknownModelError: If a candidate is not in ``catalog``.
    """

    def __init__(
        self,
        catalog: Catalog,
        rules: Sequence[RuleSpec],
        *,
        candidates: Sequence[str],
        policy: str | Policy,
        params: Mapping[str, Any] | None = None,
        predictor: QualityPredictor | None = None,
        length_predictor: OutputLengthPredictor | None = None,
        random_state: int = 0,
        default_tier: str | None = None,
        classifier: CategoryClassifier | None = None,
    ) -> None:
        self.rules = tuple(rules)
        self.default_tier = default_tier
        self.classifier = classifier
        route_policy = build_policy(policy, params) if isinstance(policy, str) else policy

        def router(rule: RuleSpec | None) -> Router:
            # Policies are pure, so rules without their own share the route's object.
            return Router(
                catalog,
                (rule.candidates if rule and rule.candidates else None) or candidates,
                build_policy(rule.policy, rule.params) if rule and rule.policy else route_policy,
                predictor,
                length_predictor,
                random_state,
                name="rules",
            )

        self.default_router = router(None)
        self.routers = tuple(router(r) for r in self.rules)

    @classmethod
    def from_router(
        cls,
        base: Router,
        rules: Sequence[RuleSpec],
        *,
        default_tier: str | None = None,
        classifier: CategoryClassifier | None = None,
    ) -> RuleRouter:
        """Rules in front of an existing router (catalog, candidates, policy, predictors, seed).

        Use it for a route whose router came from a ``router_file``: rules that set no
        policy, and requests no rule matches, use ``base``'s policy.
        """
        return cls(
            base.catalog,
            rules,
            candidates=base.candidates,
            policy=base.policy,
            predictor=base.predictor,
            length_predictor=base.length_predictor,
            random_state=base.random_state,
            default_tier=default_tier,
            classifier=classifier,
        )

    def signals(self, request: RouteRequest, body: Mapping[str, Any] | None = None) -> Signals:
        """The request's signals, with this route's default tier."""
        return compute_signals(
            request, body, default_tier=self.default_tier, classifier=self.classifier
        )

    def match(self, signals: Signals) -> RuleMatch:
        """The rule for ``signals`` and why earlier rules did not match."""
        return match_rules(self.rules, signals)

    def route(
        self,
        request: RouteRequest,
        *,
        body: Mapping[str, Any] | None = None,
        route: str | None = None,
        signals: Signals | None = None,
    ) -> RouteDecision:
        """Choose a model: compute signals, match a rule, route with that rule's router.

        Args:
            request: The routing request.
            body: The OpenAI chat body it came from, if any (richer signals).
            route: The route alias, recorded in the decision.
            signals: Precomputed signals (offline replay); ``None`` computes them.

        Returns:
            The decision, with ``signals`` and ``rule`` (matched rule, why earlier rules did
            not match, the candidates, policy and constraints it applied) filled in.

        Raises:
            NoEligibleModelError: If constraints remove every candidate of the matched rule.
        """
        sig = signals if signals is not None else self.signals(request, body)
        match = self.match(sig)
        if match.index is None:
            router = self.default_router
        else:
            router = self.routers[match.index]
        rule = match.rule
        if rule is not None:
            c = rule.constraints
            request = replace(
                request,
                max_cost_usd=_stricter(request.max_cost_usd, c.max_cost_usd),
                max_latency_s=_stricter(request.max_latency_s, c.max_latency_s),
                max_ttft_s=_stricter(request.max_ttft_s, c.max_ttft_s),
            )
        decision = router.route(request, route=route)
        explanation = {
            **match.to_dict(),
            "candidates": list(router.candidates),
            "policy": router.policy.name,
            "constraints": {
                "max_cost_usd": request.max_cost_usd,
                "max_latency_s": request.max_latency_s,
                "max_ttft_s": request.max_ttft_s,
            },
        }
        return replace(decision, signals=sig.to_dict(), rule=explanation)
