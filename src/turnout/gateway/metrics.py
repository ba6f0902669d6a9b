"""Prometheus metrics of one gateway app (its own registry, served at ``GET /metrics``).

Labels are route aliases, model ids, deployment names and status codes only: never keys,
key ids, prompts or upstream URLs.

==========================================  =========  ===================================
metric                                      type       labels
==========================================  =========  ===================================
turnout_requests_total                      counter    route, model, deployment, status
turnout_request_duration_seconds            histogram  route, stream
turnout_time_to_first_token_seconds         histogram  route
turnout_upstream_attempts_total             counter    deployment, outcome
turnout_tokens_total                        counter    model, kind (input/output)
turnout_cost_usd_total                      counter    model (recorded or estimated costs)
turnout_unpriced_requests_total             counter    model
turnout_circuit_open                        gauge      deployment (1 open / half-open)
==========================================  =========  ===================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from turnout.storage.base import Attempt
from turnout.types import Usage

__all__ = ["CONTENT_TYPE_LATEST", "GatewayMetrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class GatewayMetrics:
    """The gateway's counters and histograms, with label children cached per label tuple.

    Args:
        breaker_states: Called at scrape time; yields ``(deployment, is_open)``.
    """

    def __init__(self, breaker_states: Callable[[], Iterable[tuple[str, bool]]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "turnout_requests",
            "Requests answered.",
            ["route", "model", "deployment", "status"],
            registry=r,
        )
        self.duration = Histogram(
            "turnout_request_duration_seconds",
            "Time from arrival to the end of the response.",
            ["route", "stream"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "turnout_time_to_first_token_seconds",
            "Time to the first content sent (streams).",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.attempts = Counter(
            "turnout_upstream_attempts",
            "Upstream calls by outcome.",
            ["deployment", "outcome"],
            registry=r,
        )
        self.tokens = Counter("turnout_tokens", "Tokens metered.", ["model", "kind"], registry=r)
        self.cost = Counter("turnout_cost_usd", "Cost in USD metered.", ["model"], registry=r)
        self.unpriced = Counter(
            "turnout_unpriced_requests",
            "Requests on models with no known price.",
            ["model"],
            registry=r,
        )
        self.circuit = Gauge(
            "turnout_circuit_open",
            "1 if the deployment's breaker is open or half-open.",
            ["deployment"],
            registry=r,
        )
        self._breaker_states = breaker_states
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe(
        self,
        *,
        route: str,
        model: str,
        deployment: str,
        status: int,
        stream: bool,
        duration_s: float,
        attempts: Iterable[Attempt],
        usage: Usage | None,
        cost_usd: float | None,
        ttft_s: float | None = None,
    ) -> None:
        """Record one finished request."""
        self._child(self.requests, route, model, deployment, str(status)).inc()
        self._child(self.duration, route, "true" if stream else "false").observe(duration_s)
        if ttft_s is not None:
            self._child(self.ttft, route).observe(ttft_s)
        for a in attempts:
            self._child(self.attempts, a.deployment, a.status).inc()
        if usage is not None:
            self._child(self.tokens, model, "input").inc(usage.input_tokens)
            self._child(self.tokens, model, "output").inc(usage.output_tokens)
            if cost_usd is None:
                self._child(self.unpriced, model).inc()
            else:
                self._child(self.cost, model).inc(cost_usd)

    def render(self) -> bytes:
        """The text exposition format of every metric."""
        for deployment, is_open in self._breaker_states():
            self._child(self.circuit, deployment).set(1 if is_open else 0)
        return bytes(generate_latest(self.registry))
