"""A circuit breaker per deployment (in-process; one per gateway worker).

States::

    closed --(failure_threshold consecutive retryable failures)--> open
    open   --(cooldown_s passed)--> half-open: exactly one probe request is let through
    half-open --probe succeeds--> closed ; --probe fails--> open again (new cooldown)

A 429 with ``Retry-After`` also cools the deployment down until that time, without counting
as a breaker failure twice. Non-retryable upstream answers (400, 401, 403, 404, 413, 422) are
the caller's problem, not the deployment's: they never touch the breaker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

__all__ = ["CircuitBreaker"]

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Breaker state of one deployment.

    Args:
        failure_threshold: Consecutive retryable failures that open the breaker.
        cooldown_s: Seconds open before one probe is allowed.
        clock: Monotonic clock in seconds (injectable for tests).
    """

    __slots__ = ("failure_threshold", "cooldown_s", "_clock", "failures", "_open_until", "_probing")

    def __init__(
        self,
        failure_threshold: int,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self.failures = 0
        self._open_until = 0.0
        self._probing = False

    @property
    def state(self) -> State:
        """``closed``, ``open`` (cooling down) or ``half_open`` (a probe may go)."""
        if self._open_until == 0.0:
            return "closed"
        if self._clock() < self._open_until:
            return "open"
        return "half_open"

    def retry_in_s(self) -> float:
        """Seconds until the deployment may be tried again (0 if it may now)."""
        return max(self._open_until - self._clock(), 0.0)

    def allow(self) -> bool:
        """Whether a request may be sent now (takes the single probe slot when half-open)."""
        if self._open_until == 0.0:
            return True
        if self._clock() < self._open_until or self._probing:
            return False
        self._probing = True
        return True

    def record_success(self) -> None:
        """A call succeeded: close the breaker."""
        self.failures = 0
        self._open_until = 0.0
        self._probing = False

    def record_failure(self, cool_down_s: float | None = None) -> None:
        """A retryable failure; opens the breaker at the threshold or when probing.

        Args:
            cool_down_s: The upstream asked us to wait this long (``Retry-After``); the
                deployment is skipped at least that long.
        """
        self.failures += 1
        now = self._clock()
        if self._probing or self.failures >= self.failure_threshold:
            self._open_until = max(self._open_until, now + self.cooldown_s)
        if cool_down_s:
            self._open_until = max(self._open_until, now + cool_down_s)
        self._probing = False

    def release_probe(self) -> None:
        """A probe ended without a verdict (non-retryable answer, cancellation)."""
        self._probing = False
