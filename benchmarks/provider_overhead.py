"""Per-request overhead of the Anthropic adapter: our aiohttp transport vs the official SDK.

Starts the loopback Anthropic server (``turnout.testing.anthropic_upstream``) in a separate
process and sends N sequential requests through each client, non-streaming and streaming
(a 20-event answer), translating to and from OpenAI in every case (the SDKs do not do that):

* ``turnout``: :class:`turnout.providers.anthropic.AnthropicProvider` on a pooled
  ``aiohttp.ClientSession`` (what the gateway runs);
* ``sdk-httpx``: ``anthropic.AsyncAnthropic`` with its default HTTP client (``max_retries=0``),
  ``to_wire`` before and ``from_wire(message.model_dump())`` after;
* ``sdk-aiohttp``: the same SDK on the gateway's own ``aiohttp.ClientSession``, injected through
  the aiohttp transport the SDK vendors (``anthropic._vendor.httpx_aiohttp``, private).

If ``any-llm-sdk`` (with its ``anthropic`` and ``gemini`` extras) and ``google-genai`` are
importable, it also measures them (they pin other SDK versions than turnout's environment, so
run this script from a separate virtualenv for that: see the README's providers section):

* ``any-llm``: ``AnyLLM.create("anthropic" | "gemini", api_base=...)`` once, then
  ``acompletion`` with the OpenAI body (any-llm translates itself);
* ``google-genai``: ``genai.Client(...).aio.models.generate_content`` vs
  :class:`turnout.providers.gemini.GeminiProvider` against the loopback Gemini server.

It also times the pure translation (``to_wire`` + ``from_wire``) alone, and time to first
chunk when the upstream pauses 50 ms after its first event (does each client relay the stream
as it arrives?).

Run: ``python benchmarks/provider_overhead.py [N] [--only-optional]`` (default N=300).
Loopback only.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import anthropic

from turnout.providers._anthropic_stream import AnthropicStreamTranslator
from turnout.providers._anthropic_wire import from_wire, to_wire
from turnout.providers.anthropic import AnthropicProvider
from turnout.providers.base import Endpoint
from turnout.testing.anthropic_upstream import AnthropicAnswer, AnthropicUpstream

BODY: dict[str, Any] = {
    "model": "auto",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Say hello in five words."},
    ],
    "max_tokens": 64,
}
PORT = 9311
GEMINI_PORT = 9312


def stats_us(samples: list[float]) -> str:
    samples = sorted(samples)
    p50 = statistics.median(samples) * 1e6
    p90 = samples[int(0.9 * (len(samples) - 1))] * 1e6
    return f"p50 {p50:7.0f} us  p90 {p90:7.0f} us"


async def timed(n: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    for _ in range(max(n // 10, 5)):
        await call()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        out.append(time.perf_counter() - start)
    return out


def sdk_on_session(base_url: str, session: aiohttp.ClientSession) -> anthropic.AsyncAnthropic:
    from anthropic._vendor.httpx_aiohttp import Httpx2AiohttpClient
    from anthropic._vendor.httpx_aiohttp.transport import AiohttpTransport

    client = Httpx2AiohttpClient(transport=AiohttpTransport(client=session))
    return anthropic.AsyncAnthropic(
        base_url=base_url, api_key="k", max_retries=0, http_client=client
    )


async def run(n: int, base_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        endpoint = Endpoint(
            name="b", provider="anthropic", model="claude-b", base_url=base_url, api_key="k"
        )
        ours = AnthropicProvider(endpoint, session)
        sdk = anthropic.AsyncAnthropic(base_url=base_url, api_key="k", max_retries=0)
        sdk_aio = sdk_on_session(base_url, session)

        async def ours_complete() -> Any:
            return (await ours.complete(BODY, {})).body

        async def ours_stream() -> Any:
            return [e async for e in ours.stream(BODY, {})]

        def sdk_calls(client: anthropic.AsyncAnthropic) -> tuple[Any, Any]:
            async def complete() -> Any:
                message = await client.messages.create(**to_wire(BODY, model="claude-b"))
                return from_wire(message.model_dump(), created=0, model="claude-b")

            async def stream() -> Any:
                translator = AnthropicStreamTranslator(model="claude-b", created=0)
                events = await client.messages.create(
                    **to_wire(BODY, model="claude-b"), stream=True
                )
                chunks = []
                async for event in events:
                    chunks += translator.feed(event.type, event.model_dump_json())
                return chunks + translator.finish()

            return complete, stream

        results = {
            "turnout (aiohttp) complete": await timed(n, ours_complete),
            "turnout (aiohttp) stream  ": await timed(n, ours_stream),
        }
        for label, client in (("sdk-httpx  ", sdk), ("sdk-aiohttp", sdk_aio)):
            complete, stream = sdk_calls(client)
            results[f"{label} complete     "] = await timed(n, complete)
            results[f"{label} stream       "] = await timed(n, stream)
        for label, samples in results.items():
            print(f"{label}  {stats_us(samples)}")
        await sdk.close()

    await first_chunk_delay()
    message = AnthropicAnswer.text("Hello there, how are you?").message()
    start = time.perf_counter()
    for _ in range(2000):
        from_wire(message, created=0, model="m")
        to_wire(BODY, model="m")
    per_call_us = (time.perf_counter() - start) / 2000 * 1e6
    print(f"translation only (to_wire + from_wire): {per_call_us:.1f} us")


async def optional_libraries(n: int, anthropic_url: str, gemini_url: str) -> None:
    """any-llm-sdk and google-genai, when importable (a separate virtualenv)."""
    try:
        from any_llm import AnyLLM
        from google import genai
        from google.genai import types as genai_types
    except ImportError:
        print("any-llm-sdk / google-genai not installed: skipped")
        return
    from turnout.providers.gemini import GeminiProvider

    messages = BODY["messages"]
    async with aiohttp.ClientSession() as session:
        gem = GeminiProvider(
            Endpoint(
                name="g", provider="gemini", model="gemini-b", base_url=gemini_url, api_key="k"
            ),
            session,
        )

        async def ours_gemini() -> Any:
            return (await gem.complete(BODY, {})).body

        async def ours_gemini_stream() -> Any:
            return [e async for e in gem.stream(BODY, {})]

        results = {
            "turnout gemini complete ": await timed(n, ours_gemini),
            "turnout gemini stream   ": await timed(n, ours_gemini_stream),
        }
        client = genai.Client(
            api_key="k", http_options=genai_types.HttpOptions(base_url=gemini_url)
        )
        config = genai_types.GenerateContentConfig(
            system_instruction="You are terse.", max_output_tokens=64
        )

        async def genai_complete() -> Any:
            response = await client.aio.models.generate_content(
                model="gemini-b", contents="Say hello in five words.", config=config
            )
            return response.model_dump()

        async def genai_stream() -> Any:
            stream = await client.aio.models.generate_content_stream(
                model="gemini-b", contents="Say hello in five words.", config=config
            )
            return [chunk async for chunk in stream]

        results["google-genai complete   "] = await timed(n, genai_complete)
        results["google-genai stream     "] = await timed(n, genai_stream)
        for provider, url in (("anthropic", anthropic_url), ("gemini", gemini_url + "/v1beta")):
            llm = AnyLLM.create(provider, api_key="k", api_base=url)
            model = "claude-b" if provider == "anthropic" else "gemini-b"

            async def any_complete(llm: Any = llm, model: str = model) -> Any:
                return await llm.acompletion(model=model, messages=messages, max_tokens=64)

            async def any_stream(llm: Any = llm, model: str = model) -> Any:
                chunks = await llm.acompletion(
                    model=model, messages=messages, max_tokens=64, stream=True
                )
                return [c async for c in chunks]

            results[f"any-llm {provider:9} complete"] = await timed(n, any_complete)
            results[f"any-llm {provider:9} stream  "] = await timed(n, any_stream)
        for label, samples in results.items():
            print(f"{label}  {stats_us(samples)}")


async def first_chunk_delay() -> None:
    """Time to the first content chunk when the upstream pauses 50 ms between events."""
    answer = AnthropicAnswer.text("Hello there, friend", text_piece_chars=6, piece_delay_s=0.05)
    with AnthropicUpstream(answer) as up:
        async with aiohttp.ClientSession() as session:
            endpoint = Endpoint(name="b", provider="anthropic", model="m", base_url=up.base_url)
            ours = AnthropicProvider(endpoint, session)
            start = time.perf_counter()
            async for event in ours.stream(BODY, {}):
                if event.has_delta:
                    ours_s = time.perf_counter() - start
                    break
            sdk = anthropic.AsyncAnthropic(base_url=up.base_url, api_key="k", max_retries=0)
            start = time.perf_counter()
            events = await sdk.messages.create(**to_wire(BODY, model="m"), stream=True)
            async for item in events:
                if item.type == "content_block_delta":
                    sdk_s = time.perf_counter() - start
                    break
            await events.close()
            await sdk.close()
    total = 0.05 * (len(answer.events()) - 1)
    print(
        f"first content chunk, upstream pausing 50 ms between {len(answer.events())} events "
        f"(whole stream {total:.2f} s): turnout {ours_s * 1e3:.0f} ms, sdk {sdk_s * 1e3:.0f} ms"
    )


def main() -> None:
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    n = int(numbers[0]) if numbers else 300
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", f"turnout.testing.{name}_upstream", str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for name, port in (("anthropic", PORT), ("gemini", GEMINI_PORT))
    ]
    try:
        for server in servers:
            assert server.stdout is not None
            server.stdout.readline()
        print(f"N={n} sequential requests per variant, loopback servers in their own processes")
        anthropic_url = f"http://127.0.0.1:{PORT}"
        if "--only-optional" not in sys.argv:
            asyncio.run(run(n, anthropic_url))
        asyncio.run(optional_libraries(n, anthropic_url, f"http://127.0.0.1:{GEMINI_PORT}"))
    finally:
        for server in servers:
            server.terminate()
            server.wait(5)
    _ = AnthropicUpstream  # the server class the subprocess runs


if __name__ == "__main__":
    main()
