"""The ``storage:`` and ``keys:`` parts of ``turnout.yaml`` (embedded by :mod:`turnout.config`).

Example::

    storage:
      url: sqlite:////var/lib/turnout/turnout.db  # ledger + keys (or postgresql://...)
      counters_url: memory://                     # or redis://127.0.0.1:6379/0 for replicas
      store_prompts: false                        # prompt text is not stored unless enabled
      ledger_flush_interval_ms: 50
      ledger_batch_rows: 500
    keys:
      required: true                # false: anonymous callers allowed (no limits)
      admin_key_env: TURNOUT_ADMIN_KEY   # name of the env var holding the admin key
      cache_ttl_s: 1.0              # a revoked key stops working within this time
      unpriced_models: reject       # a budgeted key asking for an unpriced route: reject|allow
      default_limits: {rpm: 600, tpm: 200000, budget_usd: 50, budget_period: month}

Secrets never appear in the file: the admin key is named by its environment variable.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["LimitsConfig", "KeysConfig", "StorageConfig"]

_URL_SCHEMES = ("sqlite://", "postgresql://", "postgres://", "memory://")
_COUNTER_SCHEMES = ("memory://", "redis://", "rediss://", "sqlite://")


class StorageConfig(BaseModel):
    """Where the ledger, keys and counters live.

    Attributes:
        url: Ledger and key store: ``sqlite:///relative.db`` or ``sqlite:////absolute.db``
            (WAL mode; relative to the working directory), ``postgresql://user@host/db``
            (many replicas), or ``memory://`` (tests).
        keys_url: Key store URL if different from ``url`` (same schemes).
        counters_url: Rate-limit and budget counters: ``memory://`` (one process),
            ``sqlite://`` (one machine, several workers) or ``redis://host:port/db``.
        store_prompts: Store the prompt text in the ledger.
        ledger_flush_interval_ms: Most time a ledger row waits before being written.
        ledger_batch_rows: Rows written per transaction at most.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = "sqlite:///turnout.db"
    keys_url: str | None = None
    counters_url: str = "memory://"
    store_prompts: bool = False
    ledger_flush_interval_ms: int = Field(default=50, gt=0, le=60_000)
    ledger_batch_rows: int = Field(default=500, gt=0, le=100_000)

    @field_validator("url", "keys_url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(_URL_SCHEMES):
            raise ValueError(f"must start with one of {', '.join(_URL_SCHEMES)}; got {value!r}")
        return value

    @field_validator("counters_url")
    @classmethod
    def _known_counter_scheme(cls, value: str) -> str:
        if not value.startswith(_COUNTER_SCHEMES):
            raise ValueError(f"must start with one of {', '.join(_COUNTER_SCHEMES)}; got {value!r}")
        return value


class LimitsConfig(BaseModel):
    """Default limits for keys that set none of their own; ``None`` = unlimited.

    Attributes:
        rpm: Requests per minute.
        tpm: Tokens per minute (input estimate at admission, corrected to actual at the end).
        budget_usd: USD per ``budget_period``.
        budget_period: ``day``, ``week``, ``month`` (UTC calendar) or a number of seconds.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)
    budget_usd: float | None = Field(default=None, ge=0)
    budget_period: Literal["day", "week", "month"] | int = "month"

    @field_validator("budget_period")
    @classmethod
    def _positive_seconds(cls, value: str | int) -> str | int:
        if isinstance(value, int) and value <= 0:
            raise ValueError(
                f"must be day, week, month or a positive number of seconds; got {value}"
            )
        return value


class KeysConfig(BaseModel):
    """How callers authenticate.

    Attributes:
        required: If False, requests without a key are admitted anonymously, unlimited.
        admin_key_env: Name of the environment variable that holds the admin key (all routes,
            no limits); ``None`` = no admin key.
        cache_ttl_s: How long a looked-up key is cached in the process; revocation takes
            effect within this time.
        unpriced_models: What to do when a key with a budget calls a route whose worst case
            cannot be priced: ``reject`` (403, code ``budget_unpriced_model``) or ``allow``.
        default_limits: Limits applied to keys whose own limits are unset.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    required: bool = True
    admin_key_env: str | None = "TURNOUT_ADMIN_KEY"
    cache_ttl_s: float = Field(default=1.0, ge=0)
    unpriced_models: Literal["reject", "allow"] = "reject"
    default_limits: LimitsConfig = LimitsConfig()
