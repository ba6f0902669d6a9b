"""What a running gateway holds, built once from the config: routers, deployments, breakers.

:class:`Runtime` is built synchronously by :func:`turnout.gateway.create_app` (so a bad config
fails at start-up with a :class:`~turnout.errors.ConfigError`), and its provider adapters are
bound to the pooled HTTP client when the app starts (:meth:`Runtime.start`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from turnout.catalog import Catalog, ModelCard
from turnout.config import DeploymentConfig, GatewayConfig, RouteConfig, resolve_api_key
from turnout.errors import ConfigError, UnknownModelError
from turnout.gateway.breaker import CircuitBreaker
from turnout.policies import POLICIES, FixedPolicy
from turnout.policies.base import Policy
from turnout.providers import PROVIDERS
from turnout.providers.base import Endpoint, Provider, Timeouts
from turnout.router import Router
from turnout.rules import RuleRouter, rule_router_for_route

__all__ = ["DeploymentRuntime", "RouteRuntime", "Runtime", "load_router_file"]


@dataclass(slots=True)
class DeploymentRuntime:
    """One deployment at run time.

    Attributes:
        name: Deployment name.
        model_id: Catalog model id it serves.
        card: That model's card (prices, limits).
        endpoint: Where and how to call it (holds the resolved key; never shown).
        breaker: Its circuit breaker.
        max_concurrency: Most calls in flight, ``None`` = unlimited.
        in_flight: Calls in flight now.
        provider: The adapter, bound to the HTTP client when the app starts.
    """

    name: str
    model_id: str
    card: ModelCard
    endpoint: Endpoint
    breaker: CircuitBreaker
    max_concurrency: int | None = None
    in_flight: int = 0
    provider: Provider | None = None

    @property
    def busy(self) -> bool:
        """Whether the deployment is at its concurrency limit."""
        return self.max_concurrency is not None and self.in_flight >= self.max_concurrency


@dataclass(slots=True)
class RouteRuntime:
    """One route alias (or a concrete model called by name) at run time.

    Attributes:
        name: The alias callers send as ``model``.
        router: The router choosing among the route's candidates.
        config: The route's config (constraints, rules); ``None`` for a concrete model.
        cards: Cards of every candidate (for the worst-case budget reservation).
        rules: The route's declarative rules in front of ``router`` (``turnout.rules``);
            ``None`` if the route has none.
    """

    name: str
    router: Router
    config: RouteConfig | None
    cards: tuple[ModelCard, ...] = field(default=())
    rules: RuleRouter | None = None


def load_router_file(
    path: str,
    catalog: Catalog,
    candidates: list[str],
    policy: Policy | None,
    random_state: int | None,
) -> Router:
    """Load a trained router file (:func:`turnout.artifact.load_router`) for a route.

    Args:
        path: The router file.
        catalog: The gateway's catalog (the config's overrides applied).
        candidates: The route's candidates (override the saved ones).
        policy: The route's policy if the config sets one; ``None`` keeps the saved policy.
        random_state: The route's seed if the config sets one; ``None`` keeps the saved one.

    Raises:
        ConfigError: If the file cannot be loaded.
    """
    from turnout.artifact import load_router

    return load_router(
        path, catalog=catalog, candidates=candidates, policy=policy, random_state=random_state
    )


def _saved_params_under(path: str, policy_name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` merged over the router file's saved policy parameters.

    Only when ``policy_name`` is the saved policy: ``policy: utility`` on a route whose file was
    trained with the utility policy keeps the trained willingness to pay unless ``params`` sets
    it. Another policy name gets ``params`` alone.

    Raises:
        ConfigError: If the file's header cannot be read.
    """
    from turnout.artifact import read_header

    header = read_header(path)
    if header.get("policy") != policy_name:
        return params
    return {**dict(header.get("policy_params") or {}), **params}


def _endpoint(name: str, dep: DeploymentConfig, environ: Mapping[str, str]) -> Endpoint:
    t = dep.timeouts
    return Endpoint(
        name=name,
        provider=dep.provider,
        model=dep.model,
        base_url=dep.base_url,
        api_key=resolve_api_key(dep, environ),
        timeouts=Timeouts(t.connect_s, t.first_byte_s, t.idle_s, t.total_s),
        headers=dict(dep.headers),
        api_version=dep.api_version,
        system_role=dep.system_role,
    )


class Runtime:
    """Routers, deployments and breakers built from a :class:`GatewayConfig`.

    Args:
        config: The validated config.
        catalog: Base catalog (the shipped one if ``None``); the config's ``models`` apply.
        environ: Where ``api_key_env`` variables are read (``os.environ`` if ``None``).

    Raises:
        ConfigError: Unknown provider, policy or model; a missing key variable; a candidate no
            deployment serves.
    """

    def __init__(
        self,
        config: GatewayConfig,
        catalog: Catalog | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.config = config
        self.catalog = config.catalog(catalog)
        breaker = config.reliability.breaker
        self.deployments: dict[str, DeploymentRuntime] = {}
        self.by_model: dict[str, list[DeploymentRuntime]] = {}
        for name, dep in config.deployments.items():
            if dep.provider not in PROVIDERS:
                raise ConfigError(
                    f"deployments.{name}.provider: unknown provider {dep.provider!r}; "
                    f"known: {sorted(PROVIDERS)}",
                    field=f"deployments.{name}.provider",
                )
            runtime = DeploymentRuntime(
                name=name,
                model_id=dep.model_id,
                card=self.catalog[dep.model_id],
                endpoint=_endpoint(name, dep, env),
                breaker=CircuitBreaker(breaker.failure_threshold, breaker.cooldown_s),
                max_concurrency=dep.limits.max_concurrency,
            )
            self.deployments[name] = runtime
            if dep.enabled:
                self.by_model.setdefault(dep.model_id, []).append(runtime)
        self.routes: dict[str, RouteRuntime] = {
            alias: self._build_route(alias, route) for alias, route in config.routes.items()
        }
        for model in self.by_model:
            if model not in self.routes:
                router = Router(self.catalog, [model], FixedPolicy(model), name=model)
                self.routes[model] = RouteRuntime(model, router, None, (self.catalog[model],))

    def _build_route(self, alias: str, route: RouteConfig) -> RouteRuntime:
        for model in route.candidates:
            if model not in self.by_model:
                raise ConfigError(
                    f"routes.{alias}.candidates: no enabled deployment serves {model!r}",
                    field=f"routes.{alias}.candidates",
                )
        params = dict(route.params)
        if route.router_file and "policy" in route.model_fields_set:
            params = _saved_params_under(route.router_file, route.policy, params)
        try:
            policy: Policy = POLICIES[route.policy](**params)
        except KeyError:
            raise ConfigError(
                f"routes.{alias}.policy: unknown policy {route.policy!r}; "
                f"known: {sorted(POLICIES)}",
                field=f"routes.{alias}.policy",
            ) from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"routes.{alias}.params: {exc} (got {route.params!r})",
                field=f"routes.{alias}.params",
            ) from exc
        if route.router_file:
            explicit = route.model_fields_set
            router = load_router_file(
                route.router_file,
                self.catalog,
                route.candidates,
                policy if "policy" in explicit else None,
                route.random_state if "random_state" in explicit else None,
            )
        else:
            router = Router(
                self.catalog, route.candidates, policy, random_state=route.random_state, name=alias
            )
        cards = tuple(self.catalog[m] for m in route.candidates)
        rules = rule_router_for_route(
            alias,
            route,
            self.catalog,
            base=router,
            default_tier=route.constraints.tier,
            served=set(self.by_model),
        )
        return RouteRuntime(alias, router, route, cards, rules)

    def route(self, name: str) -> RouteRuntime:
        """The route a request's ``model`` names (an alias or a served model id).

        Raises:
            UnknownModelError: If ``name`` is neither.
        """
        try:
            return self.routes[name]
        except KeyError:
            raise UnknownModelError(name) from None

    def start(self, session: aiohttp.ClientSession) -> None:
        """Bind every deployment's adapter to the pooled HTTP client."""
        for dep in self.deployments.values():
            dep.provider = PROVIDERS[dep.endpoint.provider](dep.endpoint, session)

    def model_ids(self) -> list[str]:
        """Route aliases, then served model ids (what ``/v1/models`` lists)."""
        return list(self.routes)
