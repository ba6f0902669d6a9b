"""Rate-limit and budget counters: window arithmetic and the in-process implementation.

Windows:

* requests and tokens per minute count in fixed UTC minutes (``int(now // 60)``); a request
  denied for RPM/TPM gets ``retry_after_s`` = seconds to the next minute;
* the USD budget counts in its period: a UTC calendar day, ISO week (from Monday 00:00 UTC)
  or month, or fixed windows of N seconds from the Unix epoch. A new period starts at zero:
  that is the budget reset.

USD are counted as integer nano-dollars (1e-9 USD) so that sums are exact and identical in
every backend (Redis counts integers). Admission counts one request and the input-token
estimate, and reserves the worst-case cost; settle replaces the reservation by the actual
cost and adds the output tokens; release gives back the reserved USD only (the request
still counts against RPM).
"""

from __future__ import annotations

import datetime as dt
import threading

from turnout.errors import BudgetExceeded, RateLimitExceeded
from turnout.storage.base import BudgetPeriod, Limits, Reservation

__all__ = ["MemoryCounters", "budget_window", "nano_usd", "usd"]

NANO = 1_000_000_000


def nano_usd(cost_usd: float) -> int:
    """``cost_usd`` as integer nano-dollars (rounded to nearest)."""
    return round(cost_usd * NANO)


def usd(nano: int) -> float:
    """Integer nano-dollars as USD."""
    return nano / NANO


def budget_window(period: BudgetPeriod, now: float) -> tuple[str, float]:
    """The budget window containing ``now``.

    Args:
        period: ``"day"``, ``"week"``, ``"month"`` (UTC calendar) or seconds.
        now: Unix time, seconds.

    Returns:
        ``(window_id, end)``: a stable id such as ``"month:2026-11"`` and the window's end as
        Unix time.

    Raises:
        ValueError: If ``period`` is not one of the allowed values.
    """
    if isinstance(period, int):
        if period <= 0:
            raise ValueError(f"budget_period must be a positive number of seconds; got {period}")
        index = int(now // period)
        return f"s{period}:{index}", float((index + 1) * period)
    t = dt.datetime.fromtimestamp(now, dt.UTC)
    day = dt.datetime(t.year, t.month, t.day, tzinfo=dt.UTC)
    if period == "day":
        return f"day:{day.date().isoformat()}", (day + dt.timedelta(days=1)).timestamp()
    if period == "week":
        monday = day - dt.timedelta(days=day.weekday())
        return f"week:{monday.date().isoformat()}", (monday + dt.timedelta(days=7)).timestamp()
    if period == "month":
        start = dt.datetime(t.year, t.month, 1, tzinfo=dt.UTC)
        end = dt.datetime(t.year + (t.month == 12), t.month % 12 + 1, 1, tzinfo=dt.UTC)
        return f"month:{start:%Y-%m}", end.timestamp()
    raise ValueError(f"budget_period must be day, week, month or seconds; got {period!r}")


def rate_denial(what: str, used: int, limit: int, now: float) -> RateLimitExceeded:
    """The error for an RPM/TPM denial, retryable at the next minute."""
    retry = 60.0 - (now % 60.0)
    return RateLimitExceeded(
        f"rate limit reached: {what} {used} of {limit} per minute used; retry in {retry:.0f} s",
        retry_after_s=retry,
    )


def budget_denial(
    committed: int, amount: int, limit: int, end: float, now: float
) -> BudgetExceeded:
    """The error for a budget denial, retryable when the period ends."""
    return BudgetExceeded(
        f"budget exceeded: ${usd(committed):.6f} of ${usd(limit):.6f} spent or reserved this "
        f"period; this request may cost up to ${usd(amount):.6f}",
        retry_after_s=max(end - now, 0.0),
    )


# Verdict codes of check_limits and of the Redis reservation script.
ADMITTED, DENIED_RPM, DENIED_TPM, DENIED_BUDGET = 0, 1, 2, 3


def check_limits(
    limits: Limits, counts: tuple[int, int, int], tokens: int, amount: int
) -> tuple[int, int]:
    """Whether one more request with ``tokens`` and ``amount`` nano-USD fits ``limits``.

    Args:
        limits: The key's limits.
        counts: Requests and tokens this minute and nano-USD this budget period, so far.
        tokens: The request's tokens.
        amount: The request's reservation, nano-USD.

    Returns:
        ``(ADMITTED, 0)``, or the first limit passed (``DENIED_RPM``, ``DENIED_TPM``,
        ``DENIED_BUDGET``) and its count so far.
    """
    requests, used_tokens, committed = counts
    if limits.rpm is not None and requests + 1 > limits.rpm:
        return DENIED_RPM, requests
    if limits.tpm is not None and used_tokens + tokens > limits.tpm:
        return DENIED_TPM, used_tokens
    if limits.budget_usd is not None and committed + amount > nano_usd(limits.budget_usd):
        return DENIED_BUDGET, committed
    return ADMITTED, 0


def raise_denial(
    verdict: tuple[int, int], limits: Limits, amount: int, end: float, now: float
) -> None:
    """Raise the error for a denying ``(code, used)`` verdict; return if it admits.

    Args:
        verdict: From :func:`check_limits` or the Redis script.
        limits: The limits checked.
        amount: The request's reservation, nano-USD.
        end: End of the budget period, Unix time.
        now: Unix time, seconds.

    Raises:
        RateLimitExceeded: The verdict is ``DENIED_RPM`` or ``DENIED_TPM``.
        BudgetExceeded: The verdict is ``DENIED_BUDGET``.
    """
    code, used = verdict
    if code == DENIED_RPM:
        raise rate_denial("requests", used, limits.rpm or 0, now)
    if code == DENIED_TPM:
        raise rate_denial("tokens", used, limits.tpm or 0, now)
    if code == DENIED_BUDGET:
        raise budget_denial(used, amount, nano_usd(limits.budget_usd or 0.0), end, now)


class MemoryCounters:
    """Counters in this process, guarded by a lock (safe across threads and tasks).

    Good for one worker; with several workers or replicas use Redis (or SQLite on one host).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._minute = -1
        self._requests: dict[str, int] = {}
        self._tokens: dict[tuple[str, int], int] = {}
        self._usd: dict[tuple[str, str], int] = {}

    def _roll(self, minute: int) -> None:
        if minute != self._minute:
            self._minute = minute
            self._requests.clear()
            self._tokens = {k: v for k, v in self._tokens.items() if k[1] >= minute - 1}

    async def reserve(
        self, key_id: str, limits: Limits, *, tokens: int, cost_usd: float, now: float
    ) -> Reservation:
        """Count one request and ``tokens``, reserve ``cost_usd``; all or nothing.

        Raises:
            RateLimitExceeded: RPM or TPM would be passed.
            BudgetExceeded: The budget would be passed.
        """
        minute = int(now // 60)
        period, end = budget_window(limits.budget_period, now)
        amount = nano_usd(cost_usd)
        with self._lock:
            self._roll(minute)
            requests = self._requests.get(key_id, 0)
            used_tokens = self._tokens.get((key_id, minute), 0)
            committed = self._usd.get((key_id, period), 0)
            verdict = check_limits(limits, (requests, used_tokens, committed), tokens, amount)
            raise_denial(verdict, limits, amount, end, now)
            self._requests[key_id] = requests + 1
            self._tokens[(key_id, minute)] = used_tokens + tokens
            self._usd[(key_id, period)] = committed + amount
        return Reservation(key_id, minute, period, tokens, usd(amount))

    async def settle(self, reservation: Reservation, *, cost_usd: float, tokens: int) -> None:
        """Replace the reserved USD by ``cost_usd`` and the counted tokens by ``tokens``."""
        r = reservation
        with self._lock:
            usd_key = (r.key_id, r.period)
            delta = nano_usd(cost_usd) - nano_usd(r.reserved_usd)
            self._usd[usd_key] = self._usd.get(usd_key, 0) + delta
            token_key = (r.key_id, r.minute)
            if token_key in self._tokens:
                self._tokens[token_key] += tokens - r.tokens

    async def release(self, reservation: Reservation) -> None:
        """Give back the reserved USD."""
        await self.settle(reservation, cost_usd=0.0, tokens=reservation.tokens)

    async def spent_usd(self, key_id: str, limits: Limits, *, now: float) -> float:
        """USD spent plus reserved in the budget period containing ``now``."""
        period, _ = budget_window(limits.budget_period, now)
        with self._lock:
            return usd(self._usd.get((key_id, period), 0))

    async def aclose(self) -> None:
        """Nothing to release."""
