"""HTTP plumbing shared by the OpenAI-compatible adapter and the translating adapters.

One POST per call on the gateway's pooled :class:`aiohttp.ClientSession` with the connect
timeout from the endpoint and the other limits from :class:`~turnout.providers.base.Deadline`;
transport failures mapped by :func:`~turnout.providers.base.error_from_exception`; a stream's
response released back to the pool once read to the end, closed (cancelling the upstream)
otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
import orjson
from multidict import CIMultiDictProxy

from turnout.providers.base import Deadline, Endpoint, error_from_exception

__all__ = [
    "TRANSPORT_ERRORS",
    "connect_timeout",
    "end_response",
    "merged_headers",
    "parse_body",
    "post_whole",
    "read_error_body",
    "retry_after_number",
]

#: Exceptions of the transport (connection, DNS, TLS, timeouts) mapped to a ProviderError.
TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)


def parse_body(raw: bytes) -> object:
    """The body parsed as JSON, or its text (UTF-8, bad bytes replaced) if it is not JSON."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")


def retry_after_number(value: str | None) -> float | None:
    """A ``retry-after`` header read as a plain number of seconds, as the vendors send it.

    Unlike :func:`~turnout.providers.base.parse_retry_after` (used for OpenAI-compatible
    upstreams), HTTP dates are not read and the number is kept as sent (not clamped at 0).

    Returns:
        The seconds, or ``None`` if the header is absent, empty or not a number.
    """
    if value:
        try:
            return float(value)
        except ValueError:
            return None
    return None


def connect_timeout(endpoint: Endpoint) -> aiohttp.ClientTimeout:
    """Aiohttp's timeout for ``endpoint``: connect only (:class:`Deadline` does the rest)."""
    return aiohttp.ClientTimeout(
        total=None, sock_connect=endpoint.timeouts.connect_s, sock_read=None
    )


def merged_headers(headers: Mapping[str, str], own: Mapping[str, str]) -> Mapping[str, str]:
    """The caller's ``headers`` with the adapter's ``own`` ones on top (``own`` if none)."""
    return {**headers, **own} if headers else own


async def post_whole(
    session: aiohttp.ClientSession,
    url: str,
    *,
    data: bytes,
    headers: Mapping[str, str],
    timeout: aiohttp.ClientTimeout,
    endpoint: Endpoint,
    provider: str,
) -> tuple[int, bytes, CIMultiDictProxy[str]]:
    """POST ``data`` and read the whole answer within the endpoint's deadlines.

    Returns:
        The HTTP status, the raw body bytes and the response headers.

    Raises:
        ProviderError: Transport errors and timeouts, mapped by
            :func:`~turnout.providers.base.error_from_exception` for ``provider``.
    """
    deadline = Deadline(endpoint.timeouts)
    try:
        async with deadline:
            async with session.post(url, data=data, headers=headers, timeout=timeout) as resp:
                deadline.got_headers()
                raw = await resp.read()
                status = resp.status
                resp_headers = resp.headers
    except TRANSPORT_ERRORS as exc:
        raise error_from_exception(provider, exc, deadline.phase) from exc
    return status, raw, resp_headers


async def read_error_body(resp: aiohttp.ClientResponse, deadline: Deadline) -> object:
    """Read an error answer's body within the idle deadline (see :func:`parse_body`)."""
    async with deadline.read():
        raw = await resp.read()
    return parse_body(raw)


def end_response(resp: aiohttp.ClientResponse | None, finished: bool) -> None:
    """Release a finished stream's connection to the pool; close an abandoned or failed one.

    Closing drops the connection, which cancels the generation upstream.
    """
    if resp is not None:
        if finished:
            resp.release()
        else:
            resp.close()
