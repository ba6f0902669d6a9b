"""Build a route's :class:`RuleRouter` from the gateway config's route entry.

The gateway's ``RouteConfig`` (``turnout.config``) carries the rules as plain mappings; this
module validates them against the catalog (and the deployments that serve each model) and
puts them in front of the route's router.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

from turnout.catalog import Catalog
from turnout.router import Router
from turnout.rules.engine import RuleRouter, parse_rules
from turnout.signals.classifier import CategoryClassifier

__all__ = ["RouteLike", "rule_router_for_route"]


class RouteLike(Protocol):
    """The fields of ``turnout.config.RouteConfig`` this module reads."""

    @property
    def candidates(self) -> Sequence[str]:
        """The route's candidates."""
        ...

    @property
    def policy(self) -> str:
        """The route's policy name."""
        ...

    @property
    def params(self) -> Mapping[str, Any]:
        """The route's policy parameters."""
        ...

    @property
    def rules(self) -> Sequence[Mapping[str, Any]] | None:
        """The route's rules as read from YAML."""
        ...

    @property
    def random_state(self) -> int:
        """The route's seed."""
        ...


def rule_router_for_route(
    alias: str,
    route: RouteLike,
    catalog: Catalog,
    *,
    base: Router | None = None,
    default_tier: str | None = None,
    served: Collection[str] | None = None,
    classifier: CategoryClassifier | None = None,
) -> RuleRouter | None:
    """The rule router of route ``alias``, or ``None`` if the route has no rules.

    Args:
        alias: The route alias (for error paths such as ``routes.auto.rules.2.when``).
        route: The route's config entry.
        catalog: Model cards (the config's overrides applied).
        base: The route's router (e.g. loaded from its ``router_file``): the rule routers
            share its candidates, policy, predictors and seed. ``None``: the route's policy
            and catalog priors.
        default_tier: The route's tier for requests without an ``x-turnout-tier`` header.
        served: Model ids served by an enabled deployment; ``None`` skips that check.
        classifier: Category classifier; ``None`` uses the shipped one.

    Raises:
        ConfigError: If a rule is invalid (every problem listed, with its field path).
    """
    if route.rules is None:
        return None
    rules = parse_rules(
        route.rules,
        catalog=catalog,
        route_candidates=route.candidates,
        path=f"routes.{alias}.rules",
        served=served,
    )
    if base is not None:
        return RuleRouter.from_router(base, rules, default_tier=default_tier, classifier=classifier)
    return RuleRouter(
        catalog,
        rules,
        candidates=route.candidates,
        policy=route.policy,
        params=route.params,
        random_state=route.random_state,
        default_tier=default_tier,
        classifier=classifier,
    )
