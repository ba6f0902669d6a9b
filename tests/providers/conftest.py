"""Fixtures for the Anthropic and Gemini adapter tests: loopback vendor servers and a session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from turnout.testing.anthropic_upstream import AnthropicUpstream
from turnout.testing.gemini_upstream import GeminiUpstream


@pytest.fixture(scope="session")
def _anthropic_server() -> Iterator[AnthropicUpstream]:
    with AnthropicUpstream() as server:
        yield server


@pytest.fixture(scope="session")
def _gemini_server() -> Iterator[GeminiUpstream]:
    with GeminiUpstream() as server:
        yield server


@pytest.fixture
def anthropic_up(_anthropic_server: AnthropicUpstream) -> Iterator[AnthropicUpstream]:
    _anthropic_server.reset()
    yield _anthropic_server
    _anthropic_server.reset()


@pytest.fixture
def gemini_up(_gemini_server: GeminiUpstream) -> Iterator[GeminiUpstream]:
    _gemini_server.reset()
    yield _gemini_server
    _gemini_server.reset()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s
