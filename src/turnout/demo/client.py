"""The demo's caller: the official ``openai`` client sending prompts to the gateway.

The client only keeps what it needs to join the gateway's ledger back to the dataset (the
``x-request-id`` of each prompt) and what only a client can see (its own wall time per call).
Costs, models and quality in the report come from the gateway's ledger, not from here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from openai import APIError, AsyncOpenAI
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["SentRequest", "send_prompts"]


@dataclass(frozen=True, slots=True)
class SentRequest:
    """One prompt as the client saw it.

    Attributes:
        row: Row of the prompt in the held-out table.
        request_id: The gateway's ``x-request-id`` (empty if the call failed before headers).
        model: The ``x-turnout-model`` header: the model the gateway says answered.
        replayed_prompt_id: ``turnout_replay.prompt_id`` of the answer (which recorded cell
            the upstream replayed), or ``""``.
        client_latency_s: Wall time of the call as the client measured it, seconds.
        error: The error message if the call failed, else ``""``.
    """

    row: int
    request_id: str
    model: str
    replayed_prompt_id: str
    client_latency_s: float
    error: str = ""


async def _send_one(client: AsyncOpenAI, row: int, prompt: str, route: str) -> SentRequest:
    started = time.perf_counter()
    try:
        raw = await client.chat.completions.with_raw_response.create(
            model=route, messages=[{"role": "user", "content": prompt}]
        )
    except APIError as exc:
        request_id = ""
        response = getattr(exc, "response", None)
        if response is not None:
            request_id = response.headers.get("x-request-id", "")
        return SentRequest(row, request_id, "", "", time.perf_counter() - started, str(exc))
    elapsed = time.perf_counter() - started
    completion = raw.parse()
    replay = (completion.model_extra or {}).get("turnout_replay") or {}
    return SentRequest(
        row=row,
        request_id=raw.headers.get("x-request-id", ""),
        model=raw.headers.get("x-turnout-model", completion.model),
        replayed_prompt_id=str(replay.get("prompt_id", "")),
        client_latency_s=elapsed,
    )


async def send_prompts(
    base_url: str,
    prompts: Sequence[str],
    *,
    api_key: str = "turnout-demo",
    route: str = "auto",
    concurrency: int = 8,
    show_progress: bool = True,
    timeout_s: float = 60.0,
) -> list[SentRequest]:
    """Send every prompt as one user message to ``route`` and wait for all answers.

    Args:
        base_url: The gateway's OpenAI base URL (``http://127.0.0.1:<port>/v1``).
        prompts: Prompt texts, one request each, shape (n,).
        api_key: Bearer key the client sends.
        route: The ``model`` field (a route alias such as ``"auto"``).
        concurrency: Most requests in flight at once (>= 1).
        show_progress: Draw a rich progress bar.
        timeout_s: Per-request timeout of the client, seconds.

    Returns:
        One :class:`SentRequest` per prompt, in prompt order. Failed calls are returned with
        ``error`` set, never raised.

    Raises:
        ValueError: If ``concurrency`` < 1.
    """
    if concurrency < 1:
        raise ValueError(f"`concurrency` must be an integer >= 1; got {concurrency}")
    results: list[SentRequest | None] = [None] * len(prompts)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(prompts)):
        queue.put_nowait(i)
    progress = Progress(
        TextColumn("[bold]routing held-out prompts through the gateway"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not show_progress,
        transient=False,
    )
    async with AsyncOpenAI(
        base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout_s
    ) as client:
        task = progress.add_task("send", total=len(prompts))

        async def worker() -> None:
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                results[i] = await _send_one(client, i, prompts[i], route)
                progress.advance(task)

        with progress:
            await asyncio.gather(*(worker() for _ in range(min(concurrency, len(prompts)))))
    return [r for r in results if r is not None]
