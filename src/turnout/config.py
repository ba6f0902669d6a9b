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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from turnout.catalog import Catalog, ModelCard
from turnout.errors import ConfigError, TurnoutError
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
# scheme://user:password@ -> scheme://user:***@ (e.g. postgresql://admin:pw@db, redis://:pw@h)
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^/@\s:'\"]*):[^@\s/'\"]*@")


def mask_url_credentials(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` URL replaced by ``***``."""
    return _URL_PASSWORD.sub(r"\1:***@", text)


def _format_errors(error: ValidationError, prefix: str = "") -> list[str]:
    """One line per problem: dotted path, message, and the bad value (hidden for secrets).

    The input of a model-level check (a whole mapping) is never echoed, and URL passwords in
    any echoed value are masked.
    """
    lines = []
    for item in error.errors():
        loc = ".".join(str(p) for p in (*([prefix] if prefix else []), *item["loc"]))
        bad = item.get("input")
        if item["type"] == "extra_forbidden":
            name = str(item["loc"][-1]).lower()
            secret = any(w in name for w in ("key", "secret", "token", "password", "auth"))
            shown = "value not shown: it may be a secret" if secret else f"got {bad!r}"
            lines.append(f"{loc or '(top level)'}: unknown key ({shown})")
            continue
        message = str(item["msg"]).removeprefix("Value error, ")
        if any(str(p) in _SECRET_FIELDS for p in item["loc"]):
            lines.append(f"{loc}: {message} (value not shown: it may be a secret)")
        elif "got " in message or isinstance(bad, (dict, list)) or not loc:
            lines.append(f"{loc or '(top level)'}: {message}")
        else:
            lines.append(f"{loc}: {message} (got {bad!r})")
    return [mask_url_credentials(line) for line in lines]


def _read_yaml(path: str | Path) -> tuple[Any, list[str]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        return None, [f"{path}: cannot read the file ({exc.strerror or exc})"]
    try:
        return yaml.safe_load(text), []
    except yaml.YAMLError as exc:
        return None, [f"{path}: not valid YAML ({exc})"]


def _partial_config(data: Mapping[str, Any]) -> tuple[GatewayConfig, set[str], set[str]]:
    """The parts of an invalid file that do validate, for the cross-reference checks.

    Returns:
        A config built from the valid sections and entries (invalid ones dropped or at their
        defaults), the model ids named by deployments that did not validate (so routes
        naming them are not also reported as unserved), and every deployment name.
    """
    parts: dict[str, Any] = {}
    unchecked_models: set[str] = set()
    for field, cls in (
        ("server", ServerConfig),
        ("reliability", ReliabilityConfig),
        ("keys", KeysConfig),
        ("storage", StorageConfig),
    ):
        try:
            parts[field] = cls.model_validate(data.get(field, {}))
        except ValidationError:
            parts[field] = cls()
    for field, entry_cls in (("deployments", DeploymentConfig), ("routes", RouteConfig)):
        raw = data.get(field)
        valid: dict[str, Any] = {}
        for name, entry in (raw or {}).items() if isinstance(raw, dict) else ():
            try:
                valid[str(name)] = entry_cls.model_validate(entry)
            except ValidationError:
                if field == "deployments" and isinstance(entry, dict):
                    model = entry.get("catalog_model") or entry.get("model")
                    unchecked_models.add(str(model))
        parts[field] = valid
    models = data.get("models")
    parts["models"] = (
        {str(k): v for k, v in models.items() if isinstance(v, dict)}
        if isinstance(models, dict)
        else {}
    )
    raw_deployments = data.get("deployments")
    names = {str(n) for n in raw_deployments} if isinstance(raw_deployments, dict) else set()
    return GatewayConfig.model_construct(**parts), unchecked_models, names


def _catalog_collecting(config: GatewayConfig, problems: list[str]) -> Catalog:
    """The catalog with every valid ``models`` override applied; the invalid ones reported."""
    catalog = Catalog.default()
    for model_id, fields in config.models.items():
        try:
            catalog = catalog.merged({model_id: fields})
        except ConfigError as exc:
            problems += [mask_url_credentials(p) for p in str(exc).split("; ")]
    return catalog


def _keys_have_limits(config: GatewayConfig) -> bool:
    """Whether any key (the defaults, or one in the key store) has a rate limit or budget."""
    from turnout.storage.factory import open_key_store

    d = config.keys.default_limits
    if d.rpm is not None or d.tpm is not None or d.budget_usd is not None:
        return True
    try:
        store = open_key_store(config.storage)
    except TurnoutError:
        return False
    try:
        return any(
            r.limits.rpm is not None or r.limits.tpm is not None or r.limits.budget_usd is not None
            for r in store.list()
        )
    except TurnoutError:
        return False
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()


def _startup_checks(
    config: GatewayConfig, environ: Mapping[str, str] | None, workers: int
) -> list[str]:
    """Problems that ``turnout serve`` finds at start-up beyond the file's own contents."""
    problems = []
    admin_env = config.keys.admin_key_env
    if environ is not None and admin_env is not None and admin_env in environ:
        if len(environ[admin_env]) < 16:
            problems.append(
                f"keys.admin_key_env: the admin key in ${admin_env} must be at least 16 "
                f"characters; got {len(environ[admin_env])}"
            )
    if (
        workers > 1
        and config.storage.counters_url.startswith("memory:")
        and _keys_have_limits(config)
    ):
        problems.append(
            f"storage.counters_url: --workers {workers} with in-process (memory://) counters "
            f"would give each worker its own rate limits and budgets (multiplying them); set "
            f"storage.counters_url to sqlite:///counters.db or redis://host:6379/0, or run "
            f"one worker"
        )
    return problems


def _cross_check(
    config: GatewayConfig,
    base_dir: Path,
    environ: Mapping[str, str] | None,
    unchecked_models: set[str] | None = None,
    deployment_names: set[str] | None = None,
) -> list[str]:
    # Local imports: the gateway registries import aiohttp, which the core does not need.
    from turnout.policies import POLICIES
    from turnout.providers import PROVIDERS

    problems: list[str] = []
    catalog = _catalog_collecting(config, problems)
    served: Mapping[str, Any] = {
        **{m: [] for m in unchecked_models or ()},
        **config.deployments_by_model(),
    }
    for alias in sorted(set(config.routes) & (deployment_names or set(config.deployments))):
        problems.append(
            f"routes.{alias}: route alias {alias!r} is also a deployment name; route aliases "
            f"must differ from deployment names"
        )
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
            if model in (unchecked_models or ()):
                continue
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
    path: str | Path, *, environ: Mapping[str, str] | None = None, workers: int = 1
) -> tuple[GatewayConfig | None, list[str]]:
    """Validate a config file and report every problem at once.

    Args:
        path: The YAML file.
        environ: Environment to check ``api_key_env`` names against; ``None`` skips that
            check and the admin key's length (pass ``os.environ`` for ``turnout serve``).
        workers: Worker processes ``turnout serve`` will run; more than one with in-process
            counters and keys with limits or budgets is a problem.

    Returns:
        The parsed config (``None`` if the schema is invalid) and a list of problems, each
        ``"dotted.field.path: what is wrong (got value)"``; empty when the file is valid.
        Cross-reference checks run on the parts that validate even when others do not, so
        every problem is reported at once.
    """
    data, problems = _read_yaml(path)
    if problems:
        return None, problems
    if not isinstance(data, dict):
        return None, [f"{path}: must be a mapping at the top level; got {type(data).__name__}"]
    base_dir = Path(path).resolve().parent
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        partial, unchecked, names = _partial_config(data)
        problems = _format_errors(exc)
        problems += _cross_check(partial, base_dir, environ, unchecked, names)
        problems += _startup_checks(partial, environ, workers)
        return None, problems
    problems = _cross_check(config, base_dir, environ)
    return config, problems + _startup_checks(config, environ, workers)


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
