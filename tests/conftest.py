"""Shared test setup: a guard that fails any test opening a non-loopback connection.

Tests may talk to 127.0.0.1 / ::1 / localhost (loopback servers, Redis, Postgres) and Unix
sockets only. ``socket.socket.connect``/``connect_ex`` and ``socket.getaddrinfo`` are wrapped
for the whole session; a blocked attempt raises ``ConnectionRefusedError`` where it happens
(possibly in a server thread) and is also recorded, so the test that caused it fails at
teardown even if the error was swallowed. (uvloop connects outside Python's socket module:
tests run servers on the default asyncio loop.)
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "ip6-localhost", ""})
_violations: list[str] = []


def _is_loopback(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host)
    return host in _LOOPBACK_NAMES or host.startswith("127.") or host == "0:0:0:0:0:0:0:1"


def _check_address(address: Any) -> None:
    if isinstance(address, str | bytes):  # AF_UNIX path
        return
    if isinstance(address, tuple) and address and not _is_loopback(address[0]):
        _violations.append(repr(address))
        raise ConnectionRefusedError(f"tests may only connect to loopback; got {address!r}")


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_address(address)
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(address)
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _is_loopback(host):
        _violations.append(f"getaddrinfo({host!r})")
        raise socket.gaierror(f"tests may only resolve loopback names; got {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(scope="session", autouse=True)
def _loopback_only_session() -> Iterator[None]:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _guarded_getaddrinfo
    try:
        yield
    finally:
        socket.socket.connect = _real_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = _real_getaddrinfo


@pytest.fixture(autouse=True)
def _loopback_only() -> Iterator[None]:
    start = len(_violations)
    yield
    if len(_violations) > start:
        pytest.fail(f"non-loopback connection attempted: {_violations[start:]}")
