"""Loopback upstreams that replay recorded outcomes, one per recorded model.

Each :class:`ReplayUpstream` is a small aiohttp app on ``127.0.0.1`` that answers
``POST /v1/chat/completions`` like an OpenAI-compatible server, but it is **not a model**: it
looks the request's last user message up among the dataset's prompts and answers with what the
model was recorded answering to that prompt, with the token usage of that recorded call.

* Response text: the recorded ``response``; where the dataset has none, a short placeholder
  that says so.
* Usage: the dataset's input and output tokens of that cell (recorded, or counted by turnout's
  offline tokenizer where the source did not record them; see
  :mod:`turnout.evaluation.datasets`).
* Labelling: every response carries the header ``x-turnout-replay: recorded-outcome`` and a
  ``turnout_replay`` object (dataset, prompt id, model, recorded score, whether the cost is
  recorded or modelled), and its ``system_fingerprint`` is ``"turnout-replay"``.

A prompt that is not in the dataset gets an OpenAI-shaped 404 error; a malformed body gets 400.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from turnout.evaluation.datasets import OutcomeTable

__all__ = ["REPLAY_HEADER", "RecordedAnswer", "ReplayUpstream", "answers_for_model"]

#: Header every replayed response carries.
REPLAY_HEADER = "x-turnout-replay"

_PLACEHOLDER = (
    "[turnout replay] The dataset records this model's score on this prompt ({score:g}) "
    "but not its answer text."
)


@dataclass(frozen=True, slots=True)
class RecordedAnswer:
    """What one model was recorded answering to one prompt.

    Attributes:
        prompt_id: The prompt's id in the dataset.
        text: The recorded answer, or a placeholder saying it was not recorded.
        input_tokens: Prompt tokens of that call (recorded or counted).
        output_tokens: Output tokens of that call (recorded or counted).
        score: Recorded quality of the answer in [0, 1].
        cost_usd: Cost of that call in USD (recorded or modelled).
        cost_recorded: Whether the source recorded the cost (else turnout modelled it).
    """

    prompt_id: str
    text: str
    input_tokens: int
    output_tokens: int
    score: float
    cost_usd: float
    cost_recorded: bool


def answers_for_model(table: OutcomeTable, model: str) -> dict[str, RecordedAnswer]:
    """Index one model's recorded answers by prompt text.

    Args:
        table: Recorded outcomes.
        model: A column of ``table``.

    Returns:
        ``{prompt text: answer}`` for every prompt with a recorded score for ``model``.

    Raises:
        KeyError: If ``model`` is not a column of ``table``.
    """
    j = table.model_index(model)
    answers: dict[str, RecordedAnswer] = {}
    for i, prompt in enumerate(table.prompts):
        score = float(table.scores[i, j])
        if math.isnan(score) or prompt in answers:
            continue
        response = table.responses[i][j] if table.responses is not None else None
        answers[prompt] = RecordedAnswer(
            prompt_id=table.prompt_ids[i],
            text=response if response is not None else _PLACEHOLDER.format(score=score),
            input_tokens=int(round(float(table.input_tokens[i, j]))),
            output_tokens=int(round(float(table.output_tokens[i, j]))),
            score=score,
            cost_usd=float(table.cost_usd[i, j]),
            cost_recorded=bool(table.cost_recorded[i, j]),
        )
    return answers


def _error(status: int, message: str, param: str | None = None) -> web.Response:
    body = {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": None,
        }
    }
    return web.json_response(body, status=status, headers={REPLAY_HEADER: "recorded-outcome"})


def _last_user_text(body: Mapping[str, Any]) -> str | None:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return None
    return None


class ReplayUpstream:
    """An OpenAI-compatible loopback server replaying one model's recorded answers.

    Args:
        model: The model id it answers as.
        answers: ``{prompt text: recorded answer}`` (see :func:`answers_for_model`).
        dataset: Dataset name, reported in every response.
        delay_s: Seconds to wait before answering (0: answer at once).

    Use ``await start()`` (binds 127.0.0.1 on a free port; :attr:`base_url` then holds
    ``http://127.0.0.1:<port>/v1``) and ``await stop()``, on one event loop.
    """

    def __init__(
        self,
        model: str,
        answers: Mapping[str, RecordedAnswer],
        *,
        dataset: str,
        delay_s: float = 0.0,
    ) -> None:
        self.model = model
        self.answers = answers
        self.dataset = dataset
        self.delay_s = delay_s
        self.calls = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1`` once started."""
        return f"http://127.0.0.1:{self.port}/v1"

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        return app

    async def start(self) -> None:
        """Serve on 127.0.0.1, on a free port chosen by the OS."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = int(sock.getsockname()[1])
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self._runner = runner

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": self.model, "object": "model", "owned_by": "replay"}],
            }
        )

    def _completion(self, answer: RecordedAnswer) -> dict[str, Any]:
        return {
            "id": f"replay-{answer.prompt_id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "system_fingerprint": "turnout-replay",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer.text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": answer.input_tokens,
                "completion_tokens": answer.output_tokens,
                "total_tokens": answer.input_tokens + answer.output_tokens,
            },
            "turnout_replay": {
                "note": "replay of a recorded outcome, not a live model",
                "dataset": self.dataset,
                "prompt_id": answer.prompt_id,
                "model": self.model,
                "score": answer.score,
                "recorded_cost_usd": answer.cost_usd,
                "cost_kind": "recorded" if answer.cost_recorded else "modelled",
            },
        }

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "request body is not valid JSON")
        if not isinstance(body, dict):
            return _error(400, "request body must be a JSON object")
        prompt = _last_user_text(body)
        if prompt is None:
            return _error(400, "`messages` must contain a user message with text", "messages")
        answer = self.answers.get(prompt)
        if answer is None:
            return _error(
                404,
                f"replay upstream for {self.model}: this prompt is not in the recorded "
                f"dataset {self.dataset!r}",
                "messages",
            )
        self.calls += 1
        if self.delay_s > 0:
            await asyncio.sleep(self.delay_s)
        completion = self._completion(answer)
        headers = {REPLAY_HEADER: "recorded-outcome"}
        if not body.get("stream"):
            return web.json_response(completion, headers=headers)
        return await self._stream(request, body, completion, headers)

    async def _stream(
        self,
        request: web.Request,
        body: Mapping[str, Any],
        completion: dict[str, Any],
        headers: dict[str, str],
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={**headers, "content-type": "text/event-stream", "cache-control": "no-cache"}
        )
        await response.prepare(request)
        base = {k: completion[k] for k in ("id", "created", "model", "system_fingerprint")}
        base["object"] = "chat.completion.chunk"
        text = completion["choices"][0]["message"]["content"]
        deltas: list[dict[str, Any]] = [
            {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None},
            {"index": 0, "delta": {"content": text}, "finish_reason": None},
            {"index": 0, "delta": {}, "finish_reason": "stop"},
        ]
        for choice in deltas:
            await response.write(_sse({**base, "choices": [choice]}))
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            await response.write(_sse({**base, "choices": [], "usage": completion["usage"]}))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _sse(obj: Mapping[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj).encode("utf-8") + b"\n\n"
