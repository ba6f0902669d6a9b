"""The executor: call the chosen deployment; retry, back off and fall back on retryable failures.

Walk (for both streaming and non-streaming calls):

1. Candidates are the decision's ranked models (``RouteDecision.ranked``: the router already
   removed every model that fails the request's constraints), each expanded to its enabled
   deployments in config order. Nothing else is ever tried.
2. A deployment whose breaker is open, or which is at its concurrency limit, is skipped (and
   the reason recorded).
3. A call that fails with a **non-retryable** error (an upstream 400/401/403/404/413/422) is
   returned to the client at once: no retry, no fallback, the breaker untouched.
4. A **retryable** failure counts against the deployment's breaker, then:
   timeouts fall back at once (the deployment just spent the caller's time); a 429 retries the
   same deployment after its ``Retry-After`` if that is at most ``max_wait_s``, otherwise falls
   back (and the deployment cools down for the time it asked); connection errors and 408/409/5xx
   retry with exponential backoff and full jitter (``uniform(0, min(max, base * 2**n))``, as in
   the AWS architecture blog's "Exponential Backoff And Jitter"), up to
   ``max_retries_per_deployment`` times, then fall back.
5. At most ``max_attempts`` calls per request. When nothing answered:
   :class:`~turnout.gateway.errors.UpstreamUnavailable` lists each candidate and why.

For streams, a call "succeeds" once its first content or tool-call delta arrived (or it ended
normally): until then the events are buffered, not sent, so fallback stays possible.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from turnout.config import ReliabilityConfig
from turnout.errors import ProviderError, ProviderTimeout, RateLimited
from turnout.gateway.errors import AttemptFailure, UpstreamUnavailable
from turnout.gateway.runtime import DeploymentRuntime
from turnout.providers.base import Completion, StreamEvent
from turnout.storage.base import Attempt

__all__ = ["Executor", "OpenedStream"]

T = TypeVar("T")


@dataclass(slots=True)
class OpenedStream:
    """A stream that reached its first delta (or its end) on one deployment.

    Attributes:
        deployment: Who is answering.
        events: The rest of the upstream stream.
        buffered: Events received before and including the first delta, not yet sent.
        ended: Whether the upstream stream already ended normally.
    """

    deployment: DeploymentRuntime
    events: AsyncIterator[StreamEvent]
    buffered: list[StreamEvent] = field(default_factory=list)
    ended: bool = False


def _reason(exc: ProviderError) -> str:
    status = f"HTTP {exc.status_code} " if exc.status_code is not None else ""
    if isinstance(exc, RateLimited) and exc.retry_after_s is not None:
        return f"{status}rate limited (retry after {exc.retry_after_s:g} s)"
    return f"{status}{type(exc).__name__}: {exc}"


class Executor:
    """Runs one request's upstream calls with retries and fallback (see the module docstring).

    Args:
        reliability: Attempts, backoff, waits.
        rng: Randomness for backoff jitter.
    """

    def __init__(self, reliability: ReliabilityConfig, rng: random.Random | None = None) -> None:
        self.reliability = reliability
        self.rng = rng or random.Random()

    def _wait_s(self, exc: ProviderError, retries: int) -> float | None:
        """Seconds to wait before retrying the same deployment; ``None`` = fall back now."""
        r = self.reliability
        if retries >= r.max_retries_per_deployment or isinstance(exc, ProviderTimeout):
            return None
        if isinstance(exc, RateLimited) and exc.retry_after_s is not None:
            return exc.retry_after_s if exc.retry_after_s <= r.max_wait_s else None
        return self.rng.uniform(0.0, min(r.backoff_max_s, r.backoff_base_s * 2**retries))

    async def _walk(
        self,
        candidates: Sequence[DeploymentRuntime],
        call: Callable[[DeploymentRuntime], Awaitable[T]],
        attempts: list[Attempt],
    ) -> tuple[DeploymentRuntime, T]:
        failures: list[AttemptFailure] = []
        calls = 0
        max_attempts = self.reliability.max_attempts
        for dep in candidates:
            if calls >= max_attempts:
                failures.append(AttemptFailure(dep.name, dep.model_id, "attempt limit reached"))
                continue
            if dep.busy:
                failures.append(AttemptFailure(dep.name, dep.model_id, "at max concurrency"))
                continue
            if not dep.breaker.allow():
                reason = f"circuit open (retry in {dep.breaker.retry_in_s():.1f} s)"
                failures.append(AttemptFailure(dep.name, dep.model_id, reason))
                continue
            retries = 0
            while True:
                calls += 1
                started = time.perf_counter()
                dep.in_flight += 1
                try:
                    result = await call(dep)
                except ProviderError as exc:
                    attempts.append(
                        Attempt(
                            dep.name,
                            dep.model_id,
                            "failed",
                            exc.status_code,
                            type(exc).__name__,
                            time.perf_counter() - started,
                        )
                    )
                    if not exc.retryable:
                        dep.breaker.release_probe()
                        raise
                    cool_down = exc.retry_after_s if isinstance(exc, RateLimited) else None
                    dep.breaker.record_failure(cool_down)
                    wait = self._wait_s(exc, retries)
                    if wait is not None and dep.breaker.retry_in_s() > wait + 0.001:
                        wait = None  # the breaker opened for longer than we would wait
                    if wait is None or calls >= max_attempts:
                        failures.append(AttemptFailure(dep.name, dep.model_id, _reason(exc), exc))
                        break
                    retries += 1
                    await asyncio.sleep(wait)
                    if not dep.breaker.allow():
                        failures.append(AttemptFailure(dep.name, dep.model_id, _reason(exc), exc))
                        break
                    continue
                except BaseException:
                    dep.breaker.release_probe()
                    raise
                finally:
                    dep.in_flight -= 1
                dep.breaker.record_success()
                attempts.append(
                    Attempt(dep.name, dep.model_id, "ok", 200, None, time.perf_counter() - started)
                )
                return dep, result
        retry_in = [d.breaker.retry_in_s() for d in candidates]
        retry_after = min((s for s in retry_in if s > 0), default=1.0)
        raise UpstreamUnavailable(failures, retry_after_s=retry_after)

    async def complete(
        self,
        candidates: Sequence[DeploymentRuntime],
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        attempts: list[Attempt],
    ) -> tuple[DeploymentRuntime, Completion]:
        """Non-streaming call with retry and fallback.

        Args:
            candidates: Deployments in decision order.
            body: The validated request body.
            headers: Allow-listed headers for the upstream.
            attempts: Appended with every call made (for the ledger).

        Returns:
            The deployment that answered and its completion.

        Raises:
            ProviderError: A non-retryable upstream error (returned to the client as is).
            UpstreamUnavailable: No candidate answered.
        """

        async def call(dep: DeploymentRuntime) -> Completion:
            assert dep.provider is not None
            return await dep.provider.complete(body, headers)

        return await self._walk(candidates, call, attempts)

    async def open_stream(
        self,
        candidates: Sequence[DeploymentRuntime],
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        attempts: list[Attempt],
    ) -> OpenedStream:
        """Open a stream, falling back until one deployment sends its first delta.

        Raises:
            ProviderError: A non-retryable upstream error.
            UpstreamUnavailable: No candidate reached its first delta.
        """

        async def call(dep: DeploymentRuntime) -> OpenedStream:
            assert dep.provider is not None
            events = dep.provider.stream(body, headers)
            opened = OpenedStream(dep, events)
            try:
                async for event in events:
                    opened.buffered.append(event)
                    if event.done:
                        opened.ended = True
                        return opened
                    if event.has_delta:
                        return opened
            except BaseException:
                await events.aclose()  # type: ignore[attr-defined]
                raise
            opened.ended = True
            return opened

        _, opened = await self._walk(candidates, call, attempts)
        return opened
