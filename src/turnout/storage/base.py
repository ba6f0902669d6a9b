"""Storage seams of the gateway: the ledger, the key store and the shared counters.

Three small protocols, one job each, so that each can live where it fits (SQLite on one
machine; Redis for counters and Postgres for the ledger when there are many replicas):

* :class:`Ledger` -- append one :class:`LedgerRow` per request; never blocks the event loop.
* :class:`KeyStore` -- create, list, revoke and look up API keys (stored as salted hashes).
* :class:`Counters` -- atomic reserve / settle / release of a key's rate-limit windows
  (requests and tokens per minute) and USD budget for the current period.

Note for the gateway (how to call storage; see also :mod:`turnout.gateway.admission`)::

    from turnout.gateway.admission import Gatekeeper
    from turnout.storage import open_ledger
    from turnout.storage.config import KeysConfig, StorageConfig

    # at start-up (config.storage: StorageConfig, config.keys: KeysConfig)
    gatekeeper = Gatekeeper.from_config(config.storage, config.keys)
    ledger = open_ledger(config.storage)          # SQLite by default, background writer

    # per request
    principal = gatekeeper.authenticate(request.headers.get("authorization"))  # 401
    gatekeeper.check_route(principal, route)                                   # 403
    admission = await gatekeeper.admit(principal, route=route,                 # 429
                                       worst_case_cost_usd=..., input_tokens=...)
    try:
        ... call upstream ...
        await admission.settle(cost_usd, usage)   # cost_usd None = unpriced
    except BaseException:
        await admission.release()                 # or settle the partial cost
        raise
    ledger.append(LedgerRow(..., decision=decision))  # cheap: enqueues; written in batches;
                                  # pass the RouteDecision itself: to_dict runs off the loop

    # at shutdown
    ledger.close(); await gatekeeper.aclose()

All errors raised here are :class:`turnout.errors.StorageError`; admission errors are the
:class:`turnout.errors.AdmissionError` family (each carries ``status_code`` and ``code``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from turnout.types import RouteDecision, Usage

__all__ = [
    "Attempt",
    "BudgetPeriod",
    "Counters",
    "KeyRecord",
    "KeySpec",
    "KeyStore",
    "Ledger",
    "LedgerReader",
    "LedgerRow",
    "Limits",
    "Reservation",
    "RequestStatus",
]

RequestStatus = Literal["ok", "failed", "rejected"]
"""``ok``: answered; ``failed``: admitted but no (complete) answer; ``rejected``: refused
before any upstream call (auth, limits, budget, bad input)."""

BudgetPeriod = Literal["day", "week", "month"] | int
"""A calendar period in UTC (``"day"``, ``"week"`` from Monday, ``"month"``) or a fixed
window length in seconds counted from the Unix epoch."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One upstream call made for a request.

    Attributes:
        deployment: Deployment name that was called.
        model: Model id that was asked for.
        status: ``"ok"`` or ``"failed"``.
        http_status: HTTP status from the upstream, or ``None`` if there was none.
        error_class: Name of the :mod:`turnout.errors` class on failure (``"ProviderTimeout"``).
        latency_s: Wall time of this attempt, seconds.
    """

    deployment: str
    model: str
    status: Literal["ok", "failed"]
    http_status: int | None = None
    error_class: str | None = None
    latency_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "deployment": self.deployment,
            "model": self.model,
            "status": self.status,
            "http_status": self.http_status,
            "error_class": self.error_class,
            "latency_s": self.latency_s,
        }


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """Everything the gateway records about one request.

    Attributes:
        request_id: The ``x-request-id`` of the request.
        status: ``"ok"``, ``"failed"`` or ``"rejected"``.
        started_at: Unix time (seconds, UTC) the request arrived.
        finished_at: Unix time the response ended.
        key_id: Id of the API key used (``"admin"`` for the admin key), ``None`` if anonymous.
        route: Route alias (or concrete model) the caller asked for.
        model: Model that answered (or was last tried), if any.
        deployment: Deployment that answered (or was last tried), if any.
        decision: The router's decision: the :class:`~turnout.types.RouteDecision` itself
            (turned into JSON on the writer thread, off the event loop) or its
            :meth:`~turnout.types.RouteDecision.to_dict`; rows read back hold the dict.
        attempts: Every upstream call, in order.
        usage: Normalised tokens (``usage.estimated`` when turnout counted them itself).
        cost_usd: Cost in USD; ``None`` means unpriced (never a guessed $0).
        cost_estimated: True if the cost is modelled from counted tokens, False if it prices
            tokens the upstream reported.
        latency_s: Total time from arrival to the end of the response, seconds.
        ttft_s: Time to the first content byte sent to the client (streams), seconds.
        http_status: Status the client got.
        error_code: Error code the client got (``"budget_exceeded"``), if any.
        stream: Whether the client asked for a stream.
        prompt_text: The prompt text; only set when prompt logging is enabled.
        metadata: Key metadata (team, ...) and other non-secret labels.
    """

    request_id: str
    status: RequestStatus
    started_at: float
    finished_at: float
    key_id: str | None = None
    route: str | None = None
    model: str | None = None
    deployment: str | None = None
    decision: Mapping[str, Any] | RouteDecision | None = None
    attempts: Sequence[Attempt] = ()
    usage: Usage | None = None
    cost_usd: float | None = None
    cost_estimated: bool = False
    latency_s: float = 0.0
    ttft_s: float | None = None
    http_status: int = 200
    error_code: str | None = None
    stream: bool = False
    prompt_text: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


class Ledger(Protocol):
    """Where the gateway writes one row per request.

    Implementations must make :meth:`append` cheap and non-blocking (the gateway calls it on
    the event loop, once per request) and must not lose rows silently: a failed write is
    logged and the rows are kept elsewhere (see each implementation).
    """

    def append(self, row: LedgerRow) -> None:
        """Queue ``row`` for writing; returns at once."""
        ...

    def flush(self, timeout_s: float | None = None) -> None:
        """Block until every row appended so far is written (or ``timeout_s`` passes)."""
        ...

    def close(self) -> None:
        """Flush and stop; rows appended after close raise :class:`StorageError`."""
        ...


@runtime_checkable
class LedgerReader(Protocol):
    """Read access to a ledger (CLI, tests, feedback export); not used on the hot path."""

    def get(self, request_id: str) -> LedgerRow | None:
        """The row of ``request_id``, or ``None``."""
        ...

    def recent(self, limit: int = 100) -> list[LedgerRow]:
        """The latest ``limit`` rows, newest first."""
        ...


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits of one API key; ``None`` means unlimited.

    Attributes:
        rpm: Requests per minute.
        tpm: Tokens (input + output) per minute.
        budget_usd: USD that may be spent per ``budget_period``.
        budget_period: ``"day"``, ``"week"``, ``"month"`` (UTC calendar) or seconds.
    """

    rpm: int | None = None
    tpm: int | None = None
    budget_usd: float | None = None
    budget_period: BudgetPeriod = "month"


@dataclass(frozen=True, slots=True)
class KeySpec:
    """What to create a key with.

    Attributes:
        name: Human label (unique is not required).
        allowed_routes: Routes (aliases or concrete models) the key may call; ``None`` = all.
        limits: Rate limits and budget.
        metadata: Non-secret labels such as ``{"team": "search"}``.
    """

    name: str
    allowed_routes: frozenset[str] | None = None
    limits: Limits = Limits()
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A stored API key, without its secret.

    Attributes:
        key_id: Public id (also embedded in the key itself, for lookup).
        name: Human label.
        masked: A display form that reveals nothing secret (``"sk-tn-3f9a0c1b2d4e.****"``).
        allowed_routes: Routes the key may call; ``None`` = all.
        limits: Rate limits and budget.
        metadata: Non-secret labels.
        created_at: Creation time (UTC).
        revoked_at: Revocation time (UTC), ``None`` if active.
    """

    key_id: str
    name: str
    masked: str
    allowed_routes: frozenset[str] | None
    limits: Limits
    metadata: Mapping[str, str]
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None

    @property
    def active(self) -> bool:
        """Whether the key is not revoked."""
        return self.revoked_at is None


class KeyStore(Protocol):
    """API keys, stored as salted SHA-256 hashes of high-entropy random secrets."""

    def create(self, spec: KeySpec) -> tuple[KeyRecord, str]:
        """Create a key; returns the record and the plain key, which is never stored."""
        ...

    def list(self, include_revoked: bool = False) -> list[KeyRecord]:
        """Every key, oldest first."""
        ...

    def revoke(self, key_id: str) -> bool:
        """Revoke ``key_id``; False if there is no such active key."""
        ...

    def verify(self, plain_key: str) -> KeyRecord | None:
        """The record of ``plain_key`` if it matches a stored hash, else ``None``.

        Revoked keys are returned too (check :attr:`KeyRecord.active`). The hash comparison
        is constant-time.
        """
        ...


@dataclass(frozen=True, slots=True)
class Reservation:
    """What :meth:`Counters.reserve` took, so that settle/release can give it back.

    Attributes:
        key_id: The key the counters belong to.
        minute: The rate-limit window (Unix minute) the request was counted in.
        period: The budget window id the USD were reserved in.
        tokens: Tokens counted at admission (the input estimate).
        reserved_usd: USD reserved (the worst-case cost).
    """

    key_id: str
    minute: int
    period: str
    tokens: int
    reserved_usd: float


class Counters(Protocol):
    """Atomic per-key counters: requests and tokens per minute, USD per budget period.

    Implementations: in-process (one worker), Redis (shared by replicas). All three methods
    are atomic with respect to every other caller of the same backend.
    """

    async def reserve(
        self, key_id: str, limits: Limits, *, tokens: int, cost_usd: float, now: float
    ) -> Reservation:
        """Count one request and ``tokens`` and reserve ``cost_usd``, all or nothing.

        Raises:
            RateLimitExceeded: If the request or tokens would pass ``limits.rpm``/``tpm``.
            BudgetExceeded: If spent plus reserved plus ``cost_usd`` would pass the budget.
            StorageError: If the backend fails.
        """
        ...

    async def settle(self, reservation: Reservation, *, cost_usd: float, tokens: int) -> None:
        """Replace the reservation by the actual ``cost_usd`` and ``tokens`` (input+output)."""
        ...

    async def release(self, reservation: Reservation) -> None:
        """Give back the reserved USD (the request was not charged)."""
        ...

    async def spent_usd(self, key_id: str, limits: Limits, *, now: float) -> float:
        """USD spent plus reserved in the current budget period."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
