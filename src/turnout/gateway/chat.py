"""``POST /v1/chat/completions`` and ``POST /v1/route``: read, admit, route, call, meter, record.

Per request: read the body within the size limit (413) -> authenticate (401) -> parse and
validate once (400) -> resolve the route (404) -> route (pure) -> admit: route permission,
RPM/TPM, worst-case budget reservation (403/429) -> call with retry and fallback -> normalise
usage (counted and marked estimated if the upstream reported none) -> price it with the
catalog (``None`` = unpriced) -> settle the reservation (or release it on failure) -> one
ledger row (queued, written by a background thread) and metrics.

Decision headers on every answer: ``x-request-id``, ``x-turnout-route``, ``x-turnout-model``,
``x-turnout-deployment``, ``x-turnout-reason`` and ``x-turnout-cost-usd`` (USD with up to 10
decimals, or ``unpriced``; with ``x-turnout-cost-estimated: true`` when the tokens were
counted by turnout). A stream's headers leave before its cost is known, so streams carry
``x-turnout-cost-usd-estimate`` instead: the router's modelled cost of the chosen model (or
``unpriced``); the actual cost is in the ledger and the metrics.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive

from turnout.accounting import cost_usd
from turnout.errors import InvalidRequestError, TurnoutError
from turnout.features import count_tokens, route_request_from_chat
from turnout.gateway.admission import Admission, Gatekeeper, Principal, worst_case_cost_usd
from turnout.gateway.errors import error_response, error_status_and_body
from turnout.gateway.executor import Executor
from turnout.gateway.metrics import GatewayMetrics
from turnout.gateway.runtime import DeploymentRuntime, RouteRuntime, Runtime
from turnout.gateway.schemas import parse_chat_body
from turnout.gateway.streaming import StreamOutcome, StreamRelay
from turnout.signals import TIER_HEADER, parse_tier
from turnout.storage.base import Attempt, Ledger, LedgerRow
from turnout.types import RouteDecision, RouteRequest, Usage

__all__ = ["ChatHandler", "read_body"]

_SAFE_ID = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refusing more than ``max_bytes`` (checked before and while reading).

    Raises:
        InvalidRequestError: 413 ``request_too_large`` (the rest of the body is drained so
            the client reads the answer instead of a reset connection).
    """
    declared = request.headers.get("content-length")
    too_large = InvalidRequestError(
        f"the request body is larger than the gateway's limit of {max_bytes} bytes",
        code="request_too_large",
        status_code=413,
    )
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        drain_limit = max(4 * max_bytes, 64 * 1024 * 1024)
        if int(declared) <= drain_limit:
            async for _ in request.stream():
                pass
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            async for _ in request.stream():
                pass
            raise too_large
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


# Request ids: a random per-process prefix plus a counter (os.urandom per request costs a
# syscall on the hot path); unique across replicas with overwhelming probability.
_ID_PREFIX = "req_" + os.urandom(6).hex()
_ID_COUNTER = itertools.count(1)


def _request_id(headers: Mapping[str, str]) -> str:
    given = headers.get("x-request-id")
    if given and len(given) <= 128 and all(c in _SAFE_ID for c in given):
        return given
    return f"{_ID_PREFIX}{next(_ID_COUNTER):010x}"


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii").replace("\r", " ").replace("\n", " ")


def _format_usd(value: float | None) -> str:
    if value is None:
        return "unpriced"
    return f"{value:.10f}".rstrip("0").rstrip(".") or "0"


def _message_texts(body: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for choice in body.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        for call in message.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                parts.append(f"{fn.get('name', '')}{fn.get('arguments', '')}")
    return "".join(parts)


@dataclass(slots=True)
class _Context:
    request_id: str
    started_at: float
    t0: float
    stream: bool = False
    route: str | None = None
    principal: Principal | None = None
    route_request: RouteRequest | None = None
    decision: RouteDecision | None = None
    admission: Admission | None = None
    attempts: list[Attempt] = field(default_factory=list)


class ChatHandler:
    """Serves chat completions and dry-run routing for one app.

    Args:
        runtime: Routers and deployments.
        gatekeeper: Authentication and admission.
        ledger: Where one row per request goes.
        metrics: Prometheus metrics.
    """

    def __init__(
        self, runtime: Runtime, gatekeeper: Gatekeeper, ledger: Ledger, metrics: GatewayMetrics
    ) -> None:
        self.runtime = runtime
        self.gatekeeper = gatekeeper
        self.ledger = ledger
        self.metrics = metrics
        config = runtime.config
        self.executor = Executor(config.reliability)
        self.max_body_bytes = config.server.max_body_bytes
        self.forward_headers = tuple(config.server.forward_headers)
        self.expose = config.server.expose_decision_headers
        self.store_prompts = config.storage.store_prompts

    # ----------------------------------------------------------------- shared steps
    async def _admit(self, request: Request, ctx: _Context, *, admit: bool) -> dict[str, Any]:
        raw = await read_body(request, self.max_body_bytes)
        principal = self.gatekeeper.authenticate(request.headers.get("authorization"))
        ctx.principal = principal
        body = parse_chat_body(raw)
        ctx.stream = bool(body.get("stream"))
        route = self.runtime.route(body["model"])
        ctx.route = route.name
        self.gatekeeper.check_route(principal, route.name)
        tier = parse_tier(request.headers.get(TIER_HEADER))
        ctx.route_request = self._route_request(body, route, principal, tier)
        if route.rules is not None:
            ctx.decision = route.rules.route(ctx.route_request, body=body, route=route.name)
        else:
            ctx.decision = route.router.route(ctx.route_request, route=route.name)
        if admit:
            cards = [self.runtime.catalog[m] for m in ctx.decision.ranked]
            ctx.admission = await self.gatekeeper.admit(
                principal,
                route=route.name,
                worst_case_cost_usd=worst_case_cost_usd(
                    cards,
                    input_tokens=ctx.route_request.input_tokens,
                    max_output_tokens=ctx.route_request.max_output_tokens,
                ),
                input_tokens=ctx.route_request.input_tokens,
            )
        return body

    @staticmethod
    def _route_request(
        body: dict[str, Any], route: RouteRuntime, principal: Principal, tier: str | None
    ) -> RouteRequest:
        c = route.config.constraints if route.config is not None else None
        return route_request_from_chat(
            body,
            max_cost_usd=c.max_cost_usd if c else None,
            max_latency_s=c.max_latency_s if c else None,
            max_ttft_s=c.max_ttft_s if c else None,
            tier=tier or (c.tier if c else None),
            metadata=principal.metadata,
        )

    def _headers(
        self,
        ctx: _Context,
        dep: DeploymentRuntime | None = None,
        cost: float | None = None,
        cost_estimated: bool = False,
    ) -> dict[str, str]:
        headers = {"x-request-id": ctx.request_id}
        if not self.expose or ctx.decision is None:
            return headers
        decision = ctx.decision
        headers["x-turnout-route"] = _ascii(ctx.route or "")
        reason = decision.reason
        if dep is not None:
            headers["x-turnout-model"] = _ascii(dep.model_id)
            headers["x-turnout-deployment"] = _ascii(dep.name)
            if dep.model_id != decision.model:
                reason = f"fallback to {dep.model_id} after {decision.model} failed; {reason}"
            if ctx.stream:
                estimate = decision.candidate(dep.model_id).cost_usd
                headers["x-turnout-cost-usd-estimate"] = _format_usd(estimate)
            else:
                headers["x-turnout-cost-usd"] = _format_usd(cost)
                if cost_estimated:
                    headers["x-turnout-cost-estimated"] = "true"
        else:
            headers["x-turnout-model"] = _ascii(decision.model)
        headers["x-turnout-reason"] = _ascii(reason)[:512]
        return headers

    def _record(
        self,
        ctx: _Context,
        *,
        status: str,
        http_status: int,
        dep: DeploymentRuntime | None = None,
        usage: Usage | None = None,
        cost: float | None = None,
        error_code: str | None = None,
        ttft_s: float | None = None,
    ) -> None:
        finished = time.perf_counter()
        principal = ctx.principal
        rr = ctx.route_request
        model = dep.model_id if dep else (ctx.decision.model if ctx.decision else None)
        self.ledger.append(
            LedgerRow(
                request_id=ctx.request_id,
                status=status,  # type: ignore[arg-type]
                started_at=ctx.started_at,
                finished_at=ctx.started_at + (finished - ctx.t0),
                key_id=principal.key_id if principal else None,
                route=ctx.route,
                model=model,
                deployment=dep.name if dep else None,
                decision=ctx.decision.to_dict() if ctx.decision else None,
                attempts=tuple(ctx.attempts),
                usage=usage,
                cost_usd=cost,
                cost_estimated=bool(usage and usage.estimated),
                latency_s=finished - ctx.t0,
                ttft_s=ttft_s,
                http_status=http_status,
                error_code=error_code,
                stream=ctx.stream,
                prompt_text=rr.prompt if (self.store_prompts and rr is not None) else None,
                metadata=dict(principal.metadata) if principal else {},
            )
        )
        self.metrics.observe(
            route=ctx.route or "",
            model=model or "",
            deployment=dep.name if dep else "",
            status=http_status,
            stream=ctx.stream,
            duration_s=finished - ctx.t0,
            attempts=ctx.attempts,
            usage=usage,
            cost_usd=cost,
            ttft_s=ttft_s,
        )

    def _fail(self, ctx: _Context, exc: BaseException, *, admitted: bool) -> Response:
        status, body, _ = error_status_and_body(exc)
        self._record(
            ctx,
            status="failed" if admitted else "rejected",
            http_status=status,
            error_code=body["error"].get("code"),
        )
        return error_response(exc, self._headers(ctx))

    def _usage(self, ctx: _Context, reported: Usage | None, output_text: str) -> Usage:
        if reported is not None:
            return reported
        rr = ctx.route_request
        return Usage(
            input_tokens=rr.input_tokens if rr is not None else 0,
            output_tokens=count_tokens(output_text),
            estimated=True,
        )

    # ----------------------------------------------------------------- endpoints
    async def chat_completions(self, request: Request) -> Response:
        """``POST /v1/chat/completions`` (see the module docstring)."""
        ctx = _Context(_request_id(request.headers), time.time(), time.perf_counter())
        try:
            body = await self._admit(request, ctx, admit=True)
        except TurnoutError as exc:
            return self._fail(ctx, exc, admitted=False)
        assert ctx.decision is not None and ctx.admission is not None
        candidates = [d for m in ctx.decision.ranked for d in self.runtime.by_model.get(m, ())]
        upstream_headers = {"x-request-id": ctx.request_id}
        for name in self.forward_headers:
            value = request.headers.get(name)
            if value is not None:
                upstream_headers[name] = value
        if ctx.stream:
            return await self._stream(ctx, body, candidates, upstream_headers)
        # A client that goes away cancels the upstream call: a watcher cancels this task.
        task = asyncio.current_task()
        assert task is not None
        calling = [True]
        watch = asyncio.ensure_future(_wait_for_disconnect(request.receive))
        watch.add_done_callback(
            lambda w: task.cancel() if calling[0] and not w.cancelled() else None
        )
        try:
            dep, completion = await self.executor.complete(
                candidates, body, upstream_headers, ctx.attempts
            )
        except asyncio.CancelledError:
            if not watch.done() or watch.cancelled():
                await ctx.admission.release()
                raise
            task.uncancel()
            return await self._disconnected(ctx)
        except BaseException as exc:
            await ctx.admission.release()
            if isinstance(exc, TurnoutError):
                return self._fail(ctx, exc, admitted=True)
            raise
        finally:
            calling[0] = False
            watch.cancel()
        usage = self._usage(
            ctx, completion.usage, "" if completion.usage else _message_texts(completion.body)
        )
        cost = cost_usd(usage, dep.card)
        await ctx.admission.settle(cost, usage)
        self._record(ctx, status="ok", http_status=200, dep=dep, usage=usage, cost=cost)
        content = completion.raw if completion.raw is not None else orjson.dumps(completion.body)
        return Response(
            content,
            media_type="application/json",
            headers=self._headers(ctx, dep, cost, usage.estimated),
        )

    async def _disconnected(self, ctx: _Context) -> Response:
        """Meter a non-streaming call its client abandoned: the prompt was sent, no answer."""
        assert ctx.admission is not None and ctx.decision is not None
        usage = self._usage(ctx, None, "")
        card = self.runtime.catalog[ctx.decision.model]
        cost = cost_usd(usage, card)
        await ctx.admission.settle(cost, usage)
        self._record(
            ctx,
            status="failed",
            http_status=499,
            usage=usage,
            cost=cost,
            error_code="client_disconnected",
        )
        return Response(b"", 499, self._headers(ctx))

    async def _stream(
        self,
        ctx: _Context,
        body: dict[str, Any],
        candidates: list[DeploymentRuntime],
        upstream_headers: dict[str, str],
    ) -> Response:
        assert ctx.admission is not None
        admission = ctx.admission
        try:
            opened = await self.executor.open_stream(
                candidates, body, upstream_headers, ctx.attempts
            )
        except BaseException as exc:
            await admission.release()
            if isinstance(exc, TurnoutError):
                return self._fail(ctx, exc, admitted=True)
            raise
        dep = opened.deployment
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True

        async def finish(outcome: StreamOutcome) -> None:
            usage = self._usage(ctx, outcome.usage, "".join(outcome.texts))
            cost = cost_usd(usage, dep.card)
            await admission.settle(cost, usage)
            ttft = outcome.first_delta_at - ctx.t0 if outcome.first_delta_at else None
            if outcome.error is not None:
                dep.breaker.record_failure()
                ctx.attempts.append(
                    Attempt(dep.name, dep.model_id, "failed", None, type(outcome.error).__name__)
                )
                _, err, _ = error_status_and_body(outcome.error)
                self._record(
                    ctx,
                    status="failed",
                    http_status=200,
                    dep=dep,
                    usage=usage,
                    cost=cost,
                    error_code=err["error"].get("code"),
                    ttft_s=ttft,
                )
            elif outcome.disconnected and not outcome.done:
                self._record(
                    ctx,
                    status="failed",
                    http_status=499,
                    dep=dep,
                    usage=usage,
                    cost=cost,
                    error_code="client_disconnected",
                    ttft_s=ttft,
                )
            else:
                self._record(
                    ctx, status="ok", http_status=200, dep=dep, usage=usage, cost=cost, ttft_s=ttft
                )

        return StreamRelay(  # type: ignore[return-value]
            opened, self._headers(ctx, dep), include_usage=include_usage, finish=finish
        )

    async def route(self, request: Request) -> Response:
        """``POST /v1/route``: the decision for a chat body, without calling any upstream.

        Returns:
            ``{"route", "decision", "deployments", "worst_case_cost_usd"}``; errors as for
            chat completions (no admission: rate limits and budgets are not consumed).
        """
        ctx = _Context(_request_id(request.headers), time.time(), time.perf_counter())
        try:
            await self._admit(request, ctx, admit=False)
        except TurnoutError as exc:
            return error_response(exc, self._headers(ctx))
        decision, rr = ctx.decision, ctx.route_request
        assert decision is not None and rr is not None
        deployments = {
            model: [
                {"name": d.name, "breaker": d.breaker.state, "in_flight": d.in_flight}
                for d in self.runtime.by_model.get(model, ())
            ]
            for model in decision.ranked
        }
        payload = {
            "route": ctx.route,
            "decision": decision.to_dict(),
            "deployments": deployments,
            "input_tokens": rr.input_tokens,
            "required_capabilities": sorted(rr.required_capabilities),
            "worst_case_cost_usd": worst_case_cost_usd(
                [self.runtime.catalog[m] for m in decision.ranked],
                input_tokens=rr.input_tokens,
                max_output_tokens=rr.max_output_tokens,
            ),
        }
        return Response(orjson.dumps(payload), 200, self._headers(ctx), "application/json")
