"""Admission: who is calling, may they call this route, and is there room in their limits.

The gateway builds one :class:`Gatekeeper` at start-up and, per request::

    principal = gatekeeper.authenticate(request.headers.get("authorization"))  # 401
    admission = await gatekeeper.admit(                                        # 403 / 429
        principal,
        route=body["model"],
        worst_case_cost_usd=worst_case_cost_usd(cards, input_tokens=n, max_output_tokens=m),
        input_tokens=n,
    )
    try:
        ...                                              # route, call the upstream
    except BaseException:
        await admission.release()                        # nothing charged
        raise
    await admission.settle(cost_usd, usage)              # actual cost (None = unpriced)

Budgets are reserved at admission for the **worst case** (every input token at the dearest
input price of the route's candidates plus ``max_tokens`` -- or the model's max output -- at
its output price), atomically with the RPM/TPM checks, so concurrent requests cannot
overspend. ``settle`` replaces the reservation by the actual cost; ``release`` gives it back.
The bound is as good as the input-token estimate: a request that costs more than its
reservation is still charged in full.

Errors (all :class:`turnout.errors.AdmissionError`, each with ``status_code``, ``code``,
``error_type`` and ``retry_after_s``; map them in ``gateway/errors.py``):

======================  ======  =========================================================
error                   status  code
======================  ======  =========================================================
AuthenticationError     401     ``missing_api_key``, ``invalid_api_key``, ``revoked_api_key``
PermissionDeniedError   403     ``route_not_allowed``, ``budget_unpriced_model``
RateLimitExceeded       429     ``rate_limit_exceeded`` (RPM or TPM)
BudgetExceeded          429     ``budget_exceeded``
======================  ======  =========================================================

:class:`turnout.errors.StorageError` means the counters backend failed (answer 503).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from turnout.catalog import ModelCard
from turnout.errors import AuthenticationError, ConfigError, PermissionDeniedError
from turnout.storage.base import BudgetPeriod, Counters, KeyRecord, KeyStore, Limits, Reservation
from turnout.storage.config import KeysConfig, LimitsConfig, StorageConfig
from turnout.storage.keys import mask_key, parse_key
from turnout.types import Usage

__all__ = ["ADMIN_KEY_ID", "Admission", "Gatekeeper", "Principal", "worst_case_cost_usd"]

logger = logging.getLogger("turnout.gateway.admission")

ADMIN_KEY_ID = "admin"
_CACHE_MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller.

    Attributes:
        key_id: The key's id; ``"admin"`` for the admin key; ``None`` when anonymous.
        name: The key's name.
        allowed_routes: Routes the caller may use; ``None`` = all.
        limits: Effective limits (the key's own, else the configured defaults).
        metadata: Non-secret labels of the key (team, ...).
        is_admin: Whether this is the admin key.
    """

    key_id: str | None
    name: str
    allowed_routes: frozenset[str] | None
    limits: Limits
    metadata: Mapping[str, str] = field(default_factory=dict)
    is_admin: bool = False

    @property
    def masked_key(self) -> str:
        """A display form of the key that reveals no secret."""
        if self.key_id is None:
            return "anonymous"
        return "admin" if self.is_admin else mask_key(self.key_id)


class Admission:
    """One admitted request's hold on its key's counters; settle or release it exactly once.

    Attributes:
        principal: Who was admitted.
        reserved_usd: USD reserved at admission (0.0 if the key has no budget).
    """

    def __init__(
        self, principal: Principal, counters: Counters | None, reservation: Reservation | None
    ) -> None:
        self.principal = principal
        self._counters = counters
        self._reservation = reservation
        self._done = False

    @property
    def reserved_usd(self) -> float:
        """USD reserved at admission."""
        return 0.0 if self._reservation is None else self._reservation.reserved_usd

    @property
    def open(self) -> bool:
        """Whether neither settle nor release has been called yet."""
        return not self._done

    async def settle(self, cost_usd: float | None, usage: Usage | None = None) -> None:
        """Charge the actual cost in place of the reservation. Later calls do nothing.

        Args:
            cost_usd: Actual cost in USD; ``None`` (unpriced) charges nothing.
            usage: Actual tokens, counted against TPM; ``None`` keeps the admission estimate.

        A counters failure is logged (with the key id and amounts), not raised: the response
        has already been served.
        """
        if self._done:
            return
        self._done = True
        if self._reservation is None or self._counters is None:
            return
        tokens = self._reservation.tokens if usage is None else usage.total_tokens
        try:
            await self._counters.settle(self._reservation, cost_usd=cost_usd or 0.0, tokens=tokens)
        except Exception:
            logger.exception(
                "settling key %s failed: reserved $%.6f, actual $%s",
                self._reservation.key_id,
                self._reservation.reserved_usd,
                cost_usd,
            )

    async def release(self) -> None:
        """Give back the reservation (the request was not charged). Later calls do nothing."""
        await self.settle(0.0, None)


def worst_case_cost_usd(
    cards: Iterable[ModelCard], *, input_tokens: int, max_output_tokens: int | None
) -> float | None:
    """The most a request can cost on any of ``cards`` (the route's candidates), in USD.

    Per card: ``input_tokens`` at the dearer of its input and cache-write prices, plus
    ``min(max_output_tokens, card.max_output_tokens)`` (the card's max output if ``None``) at
    its output price; prices are USD per 1M tokens from the catalog.

    Args:
        cards: Every model the request may be sent to (fallbacks included).
        input_tokens: Estimated prompt tokens.
        max_output_tokens: The request's ``max_tokens`` / ``max_completion_tokens``.

    Returns:
        The largest such cost in USD, or ``None`` if any card is unpriced (no bound exists).

    Raises:
        ValueError: If ``cards`` is empty.
    """
    worst = -1.0
    for card in cards:
        if card.input_usd_per_mtok is None or card.output_usd_per_mtok is None:
            return None
        input_price = max(card.input_usd_per_mtok, card.cache_write_usd_per_mtok or 0.0)
        output = card.max_output_tokens
        if max_output_tokens is not None:
            output = min(max_output_tokens, output)
        cost = (input_tokens * input_price + output * card.output_usd_per_mtok) / 1e6
        worst = max(worst, cost)
    if worst < 0:
        raise ValueError("cards must name at least one model card; got none")
    return worst


def _effective(own: Limits, default: LimitsConfig) -> Limits:
    budget_usd: float | None = own.budget_usd
    period: BudgetPeriod = own.budget_period
    if budget_usd is None and default.budget_usd is not None:
        budget_usd, period = default.budget_usd, default.budget_period
    return Limits(
        rpm=own.rpm if own.rpm is not None else default.rpm,
        tpm=own.tpm if own.tpm is not None else default.tpm,
        budget_usd=budget_usd,
        budget_period=period,
    )


class Gatekeeper:
    """Authenticates bearer keys and admits requests against their limits and budgets.

    Args:
        key_store: Where keys are verified; ``None`` = only the admin key (or anonymous).
        counters: Rate-limit and budget counters.
        admin_key: The admin key's plain value (all routes, no limits); ``None`` = none.
        required: If False, requests without a key are admitted anonymously, unlimited.
        cache_ttl_s: How long a verified key is cached; revocation shows within this time.
        unpriced_models: ``"reject"`` or ``"allow"`` a budgeted key on an unpriced route.
        default_limits: Limits for keys that set none of their own.
        clock: Unix time in seconds (injectable for tests of period resets).
    """

    def __init__(
        self,
        key_store: KeyStore | None,
        counters: Counters,
        *,
        admin_key: str | None = None,
        required: bool = True,
        cache_ttl_s: float = 1.0,
        unpriced_models: Literal["reject", "allow"] = "reject",
        default_limits: LimitsConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key_store = key_store
        self.counters = counters
        self._admin_key = admin_key.encode() if admin_key else None
        self.required = required
        self.cache_ttl_s = cache_ttl_s
        self.unpriced_models = unpriced_models
        self.default_limits = default_limits or LimitsConfig()
        self.clock = clock
        self._cache: dict[bytes, tuple[float, KeyRecord | None]] = {}

    @classmethod
    def from_config(
        cls,
        storage: StorageConfig,
        keys: KeysConfig,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> Gatekeeper:
        """Build from the ``storage:`` and ``keys:`` sections of ``turnout.yaml``.

        Raises:
            ConfigError: If ``keys.admin_key_env`` names a variable that is set but empty.
            StorageError: If the key store or counters cannot be opened.
        """
        from turnout.storage.factory import open_counters, open_key_store

        env = os.environ if environ is None else environ
        admin_key = None
        if keys.admin_key_env is not None and keys.admin_key_env in env:
            admin_key = env[keys.admin_key_env]
            if len(admin_key) < 16:
                raise ConfigError(
                    f"keys.admin_key_env: the admin key in ${keys.admin_key_env} must be at "
                    f"least 16 characters; got {len(admin_key)}",
                    field="keys.admin_key_env",
                )
        return cls(
            open_key_store(storage),
            open_counters(storage),
            admin_key=admin_key,
            required=keys.required,
            cache_ttl_s=keys.cache_ttl_s,
            unpriced_models=keys.unpriced_models,
            default_limits=keys.default_limits,
        )

    def _lookup(self, token: str) -> KeyRecord | None:
        digest = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        record = None if self.key_store is None else self.key_store.verify(token)
        if len(self._cache) >= _CACHE_MAX_ENTRIES:
            self._cache.clear()
        if self.cache_ttl_s > 0:
            self._cache[digest] = (now + self.cache_ttl_s, record)
        return record

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller named by an ``Authorization: Bearer <key>`` header value.

        With ``required=False``, a missing header or a bearer token that is not a turnout
        key (``sk-tn-...``) is admitted as anonymous; a turnout key is still checked.

        Raises:
            AuthenticationError: 401 if the key is missing (and required), malformed,
                unknown or revoked.
        """
        if not authorization:
            if not self.required:
                return Principal(None, "anonymous", None, Limits())
            raise AuthenticationError(
                "missing API key: send it as 'Authorization: Bearer <key>'",
                code="missing_api_key",
            )
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError(
                "malformed Authorization header: expected 'Bearer <key>'", code="invalid_api_key"
            )
        if self._admin_key is not None and hmac.compare_digest(token.encode(), self._admin_key):
            return Principal(ADMIN_KEY_ID, "admin", None, Limits(), is_admin=True)
        if not self.required and parse_key(token) is None:
            # Auth is off and this is not a turnout key (SDKs always send some key, e.g. a
            # placeholder): the caller is anonymous. A malformed turnout key is still a 401.
            return Principal(None, "anonymous", None, Limits())
        record = self._lookup(token)
        if record is None:
            raise AuthenticationError("invalid API key", code="invalid_api_key")
        if not record.active:
            raise AuthenticationError(f"API key {record.masked} is revoked", code="revoked_api_key")
        return Principal(
            record.key_id,
            record.name,
            record.allowed_routes,
            _effective(record.limits, self.default_limits),
            record.metadata,
        )

    def check_route(self, principal: Principal, route: str) -> None:
        """Check that ``principal`` may call ``route`` (an alias or a concrete model).

        Raises:
            PermissionDeniedError: 403 ``route_not_allowed``.
        """
        allowed = principal.allowed_routes
        if allowed is not None and route not in allowed:
            raise PermissionDeniedError(
                f"key {principal.masked_key} may not use route {route!r}; allowed: "
                f"{', '.join(sorted(allowed)) or 'none'}",
                code="route_not_allowed",
                param="model",
            )

    async def admit(
        self,
        principal: Principal,
        *,
        route: str,
        worst_case_cost_usd: float | None,
        input_tokens: int,
    ) -> Admission:
        """Check the route, count the request and reserve its worst-case cost, atomically.

        Args:
            principal: From :meth:`authenticate`.
            route: Route alias or concrete model the request asks for.
            worst_case_cost_usd: From :func:`worst_case_cost_usd`; ``None`` if unpriced.
            input_tokens: Estimated prompt tokens (counted against TPM now, corrected on
                settle).

        Returns:
            The admission to settle or release.

        Raises:
            PermissionDeniedError: 403 if the route is not allowed, or the key has a budget
                and the route cannot be priced (``unpriced_models: reject``).
            RateLimitExceeded: 429 ``rate_limit_exceeded``.
            BudgetExceeded: 429 ``budget_exceeded``.
            StorageError: The counters backend failed.
        """
        self.check_route(principal, route)
        limits = principal.limits
        if principal.key_id is None or principal.is_admin:
            return Admission(principal, None, None)
        if limits.rpm is None and limits.tpm is None and limits.budget_usd is None:
            return Admission(principal, None, None)
        if worst_case_cost_usd is None:
            if limits.budget_usd is not None and self.unpriced_models == "reject":
                raise PermissionDeniedError(
                    f"key {principal.masked_key} has a budget, and route {route!r} may use a "
                    "model with no known price, so its cost cannot be bounded",
                    code="budget_unpriced_model",
                    param="model",
                )
            worst_case_cost_usd = 0.0
        reservation = await self.counters.reserve(
            principal.key_id,
            limits,
            tokens=input_tokens,
            cost_usd=worst_case_cost_usd,
            now=self.clock(),
        )
        return Admission(principal, self.counters, reservation)

    async def spent_usd(self, principal: Principal) -> float | None:
        """USD spent plus reserved this period by ``principal``; ``None`` if it has no budget."""
        if principal.key_id is None or principal.limits.budget_usd is None:
            return None
        return await self.counters.spent_usd(principal.key_id, principal.limits, now=self.clock())

    async def aclose(self) -> None:
        """Close the counters and key store connections."""
        await self.counters.aclose()
        close = getattr(self.key_store, "close", None)
        if close is not None:
            close()
