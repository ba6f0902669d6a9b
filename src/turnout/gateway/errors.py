"""The one place where turnout's errors become OpenAI-shaped HTTP error bodies.

Every error response of the gateway has the body OpenAI clients expect::

    {"error": {"message": "...", "type": "...", "param": "..." | null, "code": "..." | null}}

Mapping (see :func:`error_status_and_body`):

==============================  =======  ==============================================
error                           status   type / code
==============================  =======  ==============================================
InvalidRequestError             its own  invalid_request_error / its code (or invalid_value)
AdmissionError family           401-429  its ``error_type`` / its code (+ Retry-After)
UnknownModelError               404      invalid_request_error / model_not_found
NoEligibleModelError            400      invalid_request_error / no_eligible_model
UpstreamUnavailable (timeouts)  504      timeout / upstream_timeout (+ Retry-After)
UpstreamUnavailable (other)     503      service_unavailable / no_upstream_available
non-retryable ProviderError     its own  the upstream's own type, code and message
other ProviderError             502      upstream_error / upstream_error
StorageError                    503      service_unavailable / storage_unavailable
==============================  =======  ==============================================

Messages never contain secrets: upstream messages are passed through (they come from the
upstream's own error body, which never contains our key) and turnout's own messages name
fields and values of the caller's request only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response

from turnout.errors import (
    AdmissionError,
    InvalidRequestError,
    NoEligibleModelError,
    ProviderError,
    ProviderTimeout,
    StorageError,
    UnknownModelError,
)

__all__ = [
    "AttemptFailure",
    "UpstreamUnavailable",
    "error_body",
    "error_response",
    "error_status_and_body",
    "param_path",
    "stream_error_event",
]


@dataclass(frozen=True, slots=True)
class AttemptFailure:
    """Why one candidate deployment did not answer.

    Attributes:
        deployment: Deployment name.
        model: Catalog model id.
        reason: Short words (``"circuit open"``, ``"429 rate limited (retry after 30 s)"``).
        error: The provider error, if a call was made.
    """

    deployment: str
    model: str
    reason: str
    error: ProviderError | None = None


class UpstreamUnavailable(ProviderError):
    """No candidate deployment could answer: each was tried or skipped, with the reason.

    Attributes:
        failures: One entry per candidate deployment, in the order they were considered.
        retry_after_s: Seconds after which trying again may help.
    """

    def __init__(self, failures: Sequence[AttemptFailure], retry_after_s: float) -> None:
        tried = "; ".join(f"{f.deployment} ({f.model}): {f.reason}" for f in failures)
        super().__init__(
            f"no upstream could answer; tried {tried or 'nothing'}",
            provider="gateway",
            retryable=True,
        )
        self.failures = tuple(failures)
        self.retry_after_s = retry_after_s

    @property
    def all_timeouts(self) -> bool:
        """Whether every call made timed out (and at least one call was made)."""
        called = [f.error for f in self.failures if f.error is not None]
        return bool(called) and all(isinstance(e, ProviderTimeout) for e in called)


def error_body(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """The OpenAI error object ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


_DOTTED_INDEX = re.compile(r"\.(\d+)(?=[.\[]|$)")


def param_path(param: str | None) -> str | None:
    """``param`` in the one style every gateway error uses: ``messages[0].content``.

    Dotted indices (``messages.0.content``) become bracketed; ``None`` stays ``None``.
    """
    return None if param is None else _DOTTED_INDEX.sub(r"[\1]", param)


def _upstream_body(exc: ProviderError) -> dict[str, Any]:
    body = exc.body
    err = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(err, Mapping):
        return error_body(
            str(exc),
            str(err.get("type") or "invalid_request_error"),
            str(err["code"]) if err.get("code") is not None else None,
            str(err["param"]) if err.get("param") is not None else None,
        )
    return error_body(str(exc), "invalid_request_error", "upstream_error")


def _retry_after(seconds: float | None) -> dict[str, str]:
    if seconds is None:
        return {}
    return {"retry-after": str(max(1, math.ceil(seconds)))}


def error_status_and_body(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, OpenAI-shaped body and extra headers for ``exc`` (see the module table).

    Args:
        exc: Any exception; unexpected ones give 500 with a generic message (their text is
            not shown, in case it holds something private).

    Returns:
        ``(status, body, headers)``.
    """
    if isinstance(exc, AdmissionError):
        return (
            exc.status_code,
            error_body(str(exc), exc.error_type, exc.code, param_path(exc.param)),
            _retry_after(exc.retry_after_s),
        )
    if isinstance(exc, InvalidRequestError):
        code = exc.code or "invalid_value"  # every error body carries a code
        return (
            exc.status_code,
            error_body(str(exc), "invalid_request_error", code, param_path(exc.param)),
            {},
        )
    if isinstance(exc, UnknownModelError):
        message = (
            f"`model` must be a route alias or a served model; got {exc.model[:200]!r} "
            "(GET /v1/models lists them)"
        )
        return 404, error_body(message, "invalid_request_error", "model_not_found", "model"), {}
    if isinstance(exc, NoEligibleModelError):
        return 400, error_body(str(exc), "invalid_request_error", "no_eligible_model"), {}
    if isinstance(exc, UpstreamUnavailable):
        headers = _retry_after(exc.retry_after_s)
        if exc.all_timeouts:
            return 504, error_body(str(exc), "timeout", "upstream_timeout"), headers
        return 503, error_body(str(exc), "service_unavailable", "no_upstream_available"), headers
    if isinstance(exc, ProviderError):
        if not exc.retryable and exc.status_code is not None and 400 <= exc.status_code < 500:
            return exc.status_code, _upstream_body(exc), {}
        return 502, error_body(str(exc), "upstream_error", "upstream_error"), {}
    if isinstance(exc, StorageError):
        message = "the gateway's key, budget or ledger store is unavailable; try again"
        return (
            503,
            error_body(message, "service_unavailable", "storage_unavailable"),
            {"retry-after": "1"},
        )
    return 500, error_body("internal gateway error", "server_error", "internal_error"), {}


def error_response(exc: BaseException, headers: Mapping[str, str] | None = None) -> Response:
    """An HTTP response for ``exc`` with the OpenAI-shaped body.

    Args:
        exc: The error.
        headers: Extra headers (request id, decision headers).
    """
    status, body, extra = error_status_and_body(exc)
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={**extra, **(headers or {})},
    )


def stream_error_event(exc: BaseException) -> bytes:
    """An in-band SSE error event, ``data: {"error": {...}}``, that the OpenAI SDK raises on.

    The openai Python SDK raises ``APIError`` for a stream event whose data has an ``error``
    key (``openai._streaming.Stream.__stream__``).
    """
    _, body, _ = error_status_and_body(exc)
    return b"data: " + orjson.dumps(body) + b"\n\n"
