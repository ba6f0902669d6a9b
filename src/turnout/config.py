"""The gateway's YAML configuration: deployments, models, routes, keys, storage and limits.

Example ``turnout.yaml``::

    server:
      max_body_bytes: 10485760          # larger request bodies get 413
    deployments:
      openai-mini:
        provider: openai                # a key of turnout.providers.PROVIDERS
        base_url: https://api.openai.com/v1
        api_key_env: OPENAI_API_KEY     # the NAME of an environment variable, never the key
        model: gpt-4o-mini              # model name as the upstream spells it
        catalog_model: gpt-4o-mini      # catalog id for prices and limits (default: model)
        timeouts: {connect_s: 5, first_byte_s: 30, idle_s: 30, total_s: 300}
        limits: {max_concurrency: 256}
    models:                             # catalog overrides / additions (Catalog.merged)
      my-llama: {provider: vllm, input_usd_per_mtok: 0, output_usd_per_mtok: 0}
    routes:
      auto:
        candidates: [gpt-4o-mini, gpt-4o]   # catalog model ids served by some deployment
        policy: cheapest                    # a key of turnout.policies.POLICIES
        params: {}                          # keyword arguments of the policy
        constraints: {max_latency_s: 20}
        router_file: null                   # a trained router artifact (optional)
    reliability:
      max_attempts: 4
      breaker: {failure_threshold: 5, cooldown_s: 30}
    keys: {required: false}             # see turnout.storage.config.KeysConfig
    storage: {url: "sqlite:///turnout.db"}   # see turnout.storage.config.StorageConfig

Every mapping rejects unknown keys, naming their dotted path. :func:`check_config` reports every
problem at once (schema, cross-references, environment variables); :func:`load_config` raises
:class:`~turnout.errors.ConfigError` listing them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from turnout.catalog import Catalog, ModelCard
from turnout.errors import ConfigError
from turnout.storage.config import KeysConfig, StorageConfig

__all__ = [
    "BreakerConfig",
    "DeploymentConfig",
    "DeploymentLimits",
    "GatewayConfig",
    "ReliabilityConfig",
    "RouteConfig",
    "RouteConstraints",
    "ServerConfig",
    "TimeoutsConfig",
    "check_config",
    "load_config",
]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FORBIDDEN_HEADER_NAMES = frozenset({"authorization", "api-key", "x-api-key", "cookie", "host"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeoutsConfig(_Strict):
    """Per-deployment timeouts in seconds (see :class:`turnout.providers.base.Timeouts`)."""

    connect_s: float = Field(default=5.0, gt=0)
    first_byte_s: float = Field(default=60.0, gt=0)
    idle_s: float = Field(default=30.0, gt=0)
    total_s: float = Field(default=600.0, gt=0)


class DeploymentLimits(_Strict):
    """Limits of one deployment.

    Attributes:
        max_concurrency: Most requests in flight to this deployment from one worker; beyond
            it the deployment is skipped as busy (fallback). ``None`` = unlimited.
    """

    max_concurrency: int | None = Field(default=None, gt=0)


class DeploymentConfig(_Strict):
    """One place to call one model.

    Attributes:
        provider: Adapter name, a key of ``turnout.providers.PROVIDERS``.
        base_url: Upstream base URL (``http://`` or ``https://``), e.g.
            ``https://api.openai.com/v1``.
        api_key_env: Name of the environment variable holding the upstream key; ``None`` for
            keyless upstreams. Keys never appear in the file.
        model: Model name as the upstream spells it.
        catalog_model: Catalog model id this deployment serves (prices, context window);
            defaults to ``model``.
        api_version: Azure OpenAI ``api-version``.
        system_role: False for a model that accepts no system role (e.g. Gemma on the Gemini
            API); the anthropic and gemini adapters then put system text in the first user turn.
        headers: Extra static headers sent upstream (no credentials: use ``api_key_env``).
        timeouts: Connect, first-byte, idle and total timeouts.
        limits: Deployment limits.
        enabled: False keeps the deployment in the file but out of rotation.
    """

    provider: str = Field(min_length=1)
    base_url: str
    api_key_env: str | None = None
    model: str = Field(min_length=1)
    catalog_model: str | None = None
    api_version: str | None = None
    system_role: bool = True
    headers: dict[str, str] = Field(default_factory=dict)
    timeouts: TimeoutsConfig = TimeoutsConfig()
    limits: DeploymentLimits = DeploymentLimits()
    enabled: bool = True

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// URL; got {value!r}")
        return value.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(
                "must be the NAME of an environment variable (letters, digits, _), never the "
                "key itself; got a value that is not a variable name"
            )
        return value

    @field_validator("headers")
    @classmethod
    def _no_credential_headers(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(h for h in value if h.lower() in _FORBIDDEN_HEADER_NAMES)
        if bad:
            raise ValueError(f"must not set credential or host headers: {bad}")
        return value

    @property
    def model_id(self) -> str:
        """The catalog id this deployment serves."""
        return self.catalog_model or self.model


class RouteConstraints(_Strict):
    """Hard constraints applied to every request on a route (see :class:`RouteRequest`)."""

    max_cost_usd: float | None = Field(default=None, gt=0)
    max_latency_s: float | None = Field(default=None, gt=0)
    max_ttft_s: float | None = Field(default=None, gt=0)
    tier: str | None = None


class RouteConfig(_Strict):
    """A route alias callers name in ``model``.

    Attributes:
        candidates: Catalog model ids the route may choose, each served by a deployment.
        policy: Policy name, a key of ``turnout.policies.POLICIES``.
        params: Keyword arguments for the policy's constructor.
        constraints: Hard constraints for every request on the route.
        router_file: A trained router artifact; without one the policy uses catalog quality
            priors.
        rules: Ordered declarative rules evaluated before the policy (schema owned by
            :mod:`turnout.signals`); ``None`` = no rules.
        random_state: Seed for randomising policies.
    """

    candidates: list[str] = Field(min_length=1)
    policy: str = "cheapest"
    params: dict[str, Any] = Field(default_factory=dict)
    constraints: RouteConstraints = RouteConstraints()
    router_file: str | None = None
    rules: list[dict[str, Any]] | None = None
    random_state: int = 0


class BreakerConfig(_Strict):
    """Circuit breaker per deployment.

    Attributes:
        failure_threshold: Consecutive retryable failures that open the breaker.
        cooldown_s: Seconds the breaker stays open before letting one probe through.
    """

    failure_threshold: int = Field(default=5, gt=0)
    cooldown_s: float = Field(default=30.0, gt=0)


class ReliabilityConfig(_Strict):
    """Retry, backoff and fallback.

    Attributes:
        max_attempts: Most upstream calls per request, retries and fallbacks together.
        max_retries_per_deployment: Most retries of one deployment before falling back.
        backoff_base_s: First backoff; doubles each retry (full jitter).
        backoff_max_s: Largest single backoff.
        max_wait_s: Longest wait the gateway accepts for one retry (a ``Retry-After``
            beyond it, or beyond the request's remaining time, falls back instead).
        breaker: Circuit-breaker settings.
    """

    max_attempts: int = Field(default=4, gt=0, le=20)
    max_retries_per_deployment: int = Field(default=1, ge=0, le=10)
    backoff_base_s: float = Field(default=0.05, ge=0)
    backoff_max_s: float = Field(default=2.0, ge=0)
    max_wait_s: float = Field(default=5.0, ge=0)
    breaker: BreakerConfig = BreakerConfig()


class ServerConfig(_Strict):
    """HTTP server limits.

    Attributes:
        max_body_bytes: Largest request body; larger ones get 413.
        forward_headers: Extra request headers (lower-case) passed upstream; credentials are
            never forwarded whatever is listed.
        expose_decision_headers: Send the ``x-turnout-*`` decision headers.
    """

    max_body_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    forward_headers: list[str] = Field(default_factory=list)
    expose_decision_headers: bool = True

    @field_validator("forward_headers")
    @classmethod
    def _no_credentials(cls, value: list[str]) -> list[str]:
        lowered = [h.lower() for h in value]
        bad = sorted(
            h for h in lowered if h in _FORBIDDEN_HEADER_NAMES or "key" in h or "auth" in h
        )
        if bad:
            raise ValueError(f"must not forward credential headers; got {bad}")
        return lowered


class GatewayConfig(_Strict):
    """The whole ``turnout.yaml`` (see the module docstring)."""

    server: ServerConfig = ServerConfig()
    deployments: dict[str, DeploymentConfig] = Field(min_length=1)
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)
    routes: dict[str, RouteConfig] = Field(default_factory=dict)
    reliability: ReliabilityConfig = ReliabilityConfig()
    keys: KeysConfig = KeysConfig()
    storage: StorageConfig = StorageConfig()

    @model_validator(mode="after")
    def _names_do_not_clash(self) -> GatewayConfig:
        clash = sorted(set(self.routes) & set(self.deployments))
        if clash:
            raise ValueError(f"route aliases must differ from deployment names; both: {clash}")
        return self

    def catalog(self, base: Catalog | None = None) -> Catalog:
        """The shipped catalog with this file's ``models`` overrides applied.

        Raises:
            ConfigError: If an override is invalid.
        """
        return (base or Catalog.default()).merged(self.models)

    def deployments_by_model(self) -> dict[str, list[str]]:
        """Enabled deployment names per catalog model id, in file order."""
        out: dict[str, list[str]] = {}
        for name, dep in self.deployments.items():
            if dep.enabled:
                out.setdefault(dep.model_id, []).append(name)
        return out


_SECRET_FIELDS = frozenset({"api_key_env", "headers"})


def _format_errors(error: ValidationError) -> list[str]:
    """One line per problem: dotted path, message, and the bad value (hidden for secrets)."""
    lines = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"])
        if item["type"] == "extra_forbidden":
            name = str(item["loc"][-1]).lower()
            secret = any(w in name for w in ("key", "secret", "token", "password", "auth"))
            shown = (
                "value not shown: it may be a secret" if secret else f"got {item.get('input')!r}"
            )
            lines.append(f"{loc}: unknown key ({shown})")
            continue
        message = str(item["msg"]).removeprefix("Value error, ")
        if any(str(p) in _SECRET_FIELDS for p in item["loc"]):
            lines.append(f"{loc}: {message} (value not shown: it may be a secret)")
        elif "got " in message:
            lines.append(f"{loc}: {message}")
        else:
            lines.append(f"{loc}: {message} (got {item.get('input')!r})")
    return lines


def _read_yaml(path: str | Path) -> tuple[Any, list[str]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        return None, [f"{path}: cannot read the file ({exc.strerror or exc})"]
    try:
        return yaml.safe_load(text), []
    except yaml.YAMLError as exc:
        return None, [f"{path}: not valid YAML ({exc})"]


def _cross_check(
    config: GatewayConfig, base_dir: Path, environ: Mapping[str, str] | None
) -> list[str]:
    # Local imports: the gateway registries import aiohttp, which the core does not need.
    from turnout.policies import POLICIES
    from turnout.providers import PROVIDERS

    problems: list[str] = []
    try:
        catalog = config.catalog()
    except ConfigError as exc:
        return [str(exc)]
    served = config.deployments_by_model()
    for name, dep in config.deployments.items():
        path = f"deployments.{name}"
        if dep.provider not in PROVIDERS:
            problems.append(
                f"{path}.provider: unknown provider {dep.provider!r}; known: {sorted(PROVIDERS)}"
            )
        if dep.model_id not in catalog:
            problems.append(
                f"{path}.catalog_model: model {dep.model_id!r} is not in the catalog; add it "
                f"under models: or set catalog_model"
            )
        if environ is not None and dep.api_key_env and not environ.get(dep.api_key_env):
            problems.append(
                f"{path}.api_key_env: environment variable {dep.api_key_env!r} is not set"
            )
    for alias, route in config.routes.items():
        path = f"routes.{alias}"
        for i, model in enumerate(route.candidates):
            if model not in catalog:
                problems.append(f"{path}.candidates.{i}: model {model!r} is not in the catalog")
            elif model not in served:
                problems.append(
                    f"{path}.candidates.{i}: no enabled deployment serves model {model!r}"
                )
        policy_cls = POLICIES.get(route.policy)
        if policy_cls is None:
            problems.append(
                f"{path}.policy: unknown policy {route.policy!r}; known: {sorted(POLICIES)}"
            )
        else:
            try:
                policy_cls(**route.params)
            except (TypeError, ValueError) as exc:
                problems.append(f"{path}.params: {exc} (got {route.params!r})")
        if route.router_file and not (base_dir / route.router_file).is_file():
            problems.append(f"{path}.router_file: no such file {route.router_file!r}")
        problems += _check_task_aware(path, route, catalog, served)
    return problems


def _check_task_aware(
    path: str, route: RouteConfig, catalog: Catalog, served: Mapping[str, list[str]]
) -> list[str]:
    """Problems of a route's default tier and declarative rules (see :mod:`turnout.rules`)."""
    from turnout.rules import check_rules
    from turnout.signals import TIERS

    problems = []
    if route.constraints.tier is not None and route.constraints.tier not in TIERS:
        problems.append(
            f"{path}.constraints.tier: must be one of {list(TIERS)}; got {route.constraints.tier!r}"
        )
    if route.rules is not None:
        problems += check_rules(
            route.rules,
            catalog=catalog,
            route_candidates=route.candidates,
            path=f"{path}.rules",
            served=set(served),
        )[1]
    return problems


def check_config(
    path: str | Path, *, environ: Mapping[str, str] | None = None
) -> tuple[GatewayConfig | None, list[str]]:
    """Validate a config file and report every problem at once.

    Args:
        path: The YAML file.
        environ: Environment to check ``api_key_env`` names against; ``None`` skips that
            check (pass ``os.environ`` for ``turnout serve --check-config``).

    Returns:
        The parsed config (``None`` if the schema is invalid) and a list of problems, each
        ``"dotted.field.path: what is wrong (got value)"``; empty when the file is valid.
    """
    data, problems = _read_yaml(path)
    if problems:
        return None, problems
    if not isinstance(data, dict):
        return None, [f"{path}: must be a mapping at the top level; got {type(data).__name__}"]
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        return None, _format_errors(exc)
    base_dir = Path(path).resolve().parent
    return config, _cross_check(config, base_dir, environ)


def load_config(path: str | Path, *, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """Load and validate ``turnout.yaml``.

    Args:
        path: The YAML file.
        environ: If given, also require every ``api_key_env`` to be set in it.

    Returns:
        The validated config; relative ``router_file`` paths are resolved against the file's
        directory.

    Raises:
        ConfigError: Listing every problem, each with its dotted field path and bad value.
    """
    config, problems = check_config(path, environ=environ)
    if problems or config is None:
        raise ConfigError(
            f"invalid config {path}:\n  " + "\n  ".join(problems),
            field=problems[0].split(":")[0] if problems else None,
        )
    base_dir = Path(path).resolve().parent
    routes = {
        alias: route.model_copy(update={"router_file": str(base_dir / route.router_file)})
        if route.router_file
        else route
        for alias, route in config.routes.items()
    }
    return config.model_copy(update={"routes": routes})


def resolve_api_key(dep: DeploymentConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The upstream key of ``dep`` from the environment.

    Raises:
        ConfigError: If ``api_key_env`` names a variable that is not set.
    """
    if dep.api_key_env is None:
        return None
    env = os.environ if environ is None else environ
    value = env.get(dep.api_key_env)
    if not value:
        raise ConfigError(
            f"environment variable {dep.api_key_env!r} (api_key_env) is not set",
            field="api_key_env",
        )
    return value


def card_for(catalog: Catalog, dep: DeploymentConfig) -> ModelCard:
    """The catalog card of the model ``dep`` serves."""
    return catalog[dep.model_id]
