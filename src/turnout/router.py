"""The router: hard constraints, then predictor, then policy -> :class:`RouteDecision`.

``Router.route`` is pure: no I/O, no clock, and its only randomness is a seed derived from
``random_state`` and the request text. The gateway and offline replay call the same object.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from turnout.catalog import Catalog, ModelCard
from turnout.errors import ConfigError, NoEligibleModelError
from turnout.policies.base import Policy
from turnout.predictors.base import OutputLengthPredictor, QualityPredictor
from turnout.types import CandidateScore, Removal, RouteDecision, RouteRequest

__all__ = ["DEFAULT_OUTPUT_TOKENS", "Router"]

#: Output tokens assumed for a model when no length predictor knows it.
DEFAULT_OUTPUT_TOKENS = 256.0

# (id, context window, input and output USD per 1M tokens (None if either is unknown), TTFT
# prior in seconds, output tokens per second) of one card.
_CardNumbers = tuple[str, int, float | None, float | None, float, float]


class Router:
    """Chooses a model for each request among ``candidates``.

    Args:
        catalog: Model cards (prices, limits, capabilities, latency priors).
        candidates: Model ids the router may choose; each must be in ``catalog``.
        policy: Ranks the eligible candidates (see :mod:`turnout.policies`).
        predictor: Fitted quality predictor; models it does not know use the card's
            ``quality_prior``. ``None`` uses the priors for all.
        length_predictor: Fitted output-length predictor (tokens); ``None`` assumes
            :data:`DEFAULT_OUTPUT_TOKENS` capped by the request's ``max_output_tokens``.
        random_state: Seed for policies that randomise.
        name: A label for reports.

    Raises:
        ConfigError: If ``candidates`` is empty.
        UnknownModelError: If a candidate is not in ``catalog``.
    """

    def __init__(
        self,
        catalog: Catalog,
        candidates: Sequence[str],
        policy: Policy,
        predictor: QualityPredictor | None = None,
        length_predictor: OutputLengthPredictor | None = None,
        random_state: int = 0,
        name: str = "router",
    ) -> None:
        if not candidates:
            raise ConfigError(
                "`candidates` must name at least one model; got []", field="candidates"
            )
        self.catalog = catalog
        self.candidates = tuple(candidates)
        self.cards: tuple[ModelCard, ...] = tuple(catalog[m] for m in self.candidates)
        self.policy = policy
        self.predictor = predictor
        self.length_predictor = length_predictor
        self.random_state = random_state
        self.name = name
        self._quality_cols = self._columns(predictor)
        self._length_cols = self._columns(length_predictor)
        # The per-card numbers `route` reads for every request, read from the cards once.
        self._card_numbers: tuple[tuple[ModelCard, ...], list[_CardNumbers]] | None = None

    def _numbers(self) -> list[_CardNumbers]:
        cached = self.__dict__.get("_card_numbers")  # absent from routers pickled before it
        if cached is None or cached[0] is not self.cards:
            numbers = [
                (
                    c.id,
                    c.context_window_tokens,
                    c.input_usd_per_mtok if c.output_usd_per_mtok is not None else None,
                    c.output_usd_per_mtok if c.input_usd_per_mtok is not None else None,
                    c.ttft_s,
                    c.output_tokens_per_s,
                )
                for c in self.cards
            ]
            cached = self._card_numbers = (self.cards, numbers)
        return cached[1]

    def _columns(self, predictor: QualityPredictor | OutputLengthPredictor | None) -> list[int]:
        if predictor is None:
            return [-1] * len(self.candidates)
        index = {m: i for i, m in enumerate(predictor.models_)}
        return [index.get(m, -1) for m in self.candidates]

    def predict_quality(self, prompts: Sequence[str]) -> list[list[float]]:
        """Expected quality per (prompt, candidate), shape (n_prompts, n_candidates)."""
        if self.predictor is None:
            return [[c.quality_prior for c in self.cards] for _ in prompts]
        pred: list[list[float]] = np.asarray(self.predictor.predict(prompts), np.float64).tolist()
        cols = self._quality_cols
        if cols == list(range(len(pred[0]) if pred else 0)):
            return pred
        return [
            [
                row[j] if j >= 0 else card.quality_prior
                for j, card in zip(cols, self.cards, strict=True)
            ]
            for row in pred
        ]

    def predict_output_tokens(self, prompts: Sequence[str]) -> list[list[float]]:
        """Expected output tokens per (prompt, candidate), shape (n_prompts, n_candidates)."""
        if self.length_predictor is None:
            return [[DEFAULT_OUTPUT_TOKENS] * len(self.cards) for _ in prompts]
        pred: list[list[float]] = np.asarray(
            self.length_predictor.predict(prompts), np.float64
        ).tolist()
        cols = self._length_cols
        if cols == list(range(len(pred[0]) if pred else 0)):
            return pred
        return [[row[j] if j >= 0 else DEFAULT_OUTPUT_TOKENS for j in cols] for row in pred]

    def with_policy(self, policy: Policy, name: str | None = None) -> Router:
        """A router sharing this one's catalog, candidates and predictors, with another policy."""
        return Router(
            self.catalog,
            self.candidates,
            policy,
            self.predictor,
            self.length_predictor,
            self.random_state,
            name or self.name,
        )

    def route(
        self,
        request: RouteRequest,
        *,
        route: str | None = None,
        quality: Sequence[float] | None = None,
        output_tokens: Sequence[float] | None = None,
    ) -> RouteDecision:
        """Choose a model for ``request``.

        Args:
            request: What to route (see :func:`turnout.features.route_request_from_chat`).
            route: The route alias, recorded in the decision.
            quality: Precomputed expected quality per candidate, shape (n_candidates,), in
                ``candidates`` order (offline replay predicts in batch, then routes each
                prompt with exactly this code). ``None`` runs the predictor.
            output_tokens: Precomputed expected output tokens per candidate, shape
                (n_candidates,); ``None`` runs the length predictor.

        Returns:
            The decision: chosen model, ranked fallbacks, per-candidate estimates, removals
            with reasons, and a one-line reason.

        Raises:
            NoEligibleModelError: If hard constraints remove every candidate.
        """
        removed: list[Removal] = []
        numbers = self._numbers()
        max_out = request.max_output_tokens
        if (
            request.allowed_models is None
            and not request.required_capabilities
            and max_out is None
            and request.max_ttft_s is None
        ):
            # No request constraint but the prompt's size: only context windows can remove.
            need = request.input_tokens
            kept = [i for i, n in enumerate(numbers) if need <= n[1]]
            if len(kept) < len(numbers):
                removed = [
                    Removal(card.id, self._static_violation(card, request))
                    for i, card in enumerate(self.cards)
                    if numbers[i][1] < need
                ]
        else:
            kept = []
            for i, card in enumerate(self.cards):
                why = self._static_violation(card, request)
                if why:
                    removed.append(Removal(card.id, why))
                else:
                    kept.append(i)
        scored: list[CandidateScore] = []
        if kept:
            if quality is None:
                quality = self.predict_quality([request.prompt])[0]
            lengths = (
                output_tokens
                if output_tokens is not None
                else self.predict_output_tokens([request.prompt])[0]
            )
            cap = float(max_out) if max_out is not None else None
            check = request.max_cost_usd is not None or request.max_latency_s is not None
            input_tokens = request.input_tokens
            for i in kept:
                model, _, in_usd, out_usd, ttft_s, tokens_per_s = numbers[i]
                out = lengths[i]
                if cap is not None:
                    out = min(out, cap)
                # = estimate_cost_usd(input_tokens, out, card), same arithmetic, inlined.
                cost = (
                    None
                    if in_usd is None or out_usd is None
                    else (input_tokens * in_usd + out * out_usd) / 1e6
                )
                candidate = CandidateScore(
                    model, quality[i], cost, ttft_s + out / tokens_per_s, out
                )
                if check:
                    why = self._estimate_violation(self.cards[i], candidate, request)
                    if why:
                        removed.append(Removal(model, why))
                        continue
                scored.append(candidate)
        if not scored:
            detail = "; ".join(f"{r.model}: {r.reason}" for r in removed)
            raise NoEligibleModelError(
                f"no candidate satisfies the request's constraints ({detail})",
                tuple((r.model, r.reason) for r in removed),
            )
        seed = zlib.crc32(request.prompt.encode("utf-8", "surrogatepass"), self.random_state)
        choice = self.policy.choose(scored, request, seed=seed)
        ranked = choice.ranked
        return RouteDecision(
            model=ranked[0].model,
            fallbacks=tuple(c.model for c in ranked[1:]),
            candidates=ranked,
            removed=tuple(removed),
            policy=self.policy.name,
            reason=choice.reason,
            route=route,
        )

    @staticmethod
    def _static_violation(card: ModelCard, request: RouteRequest) -> str:
        if request.allowed_models is not None and card.id not in request.allowed_models:
            return "not in the allow-list"
        missing = request.required_capabilities - card.capabilities
        if missing:
            return f"lacks capability {', '.join(sorted(missing))}"
        need = request.input_tokens + (request.max_output_tokens or 0)
        if need > card.context_window_tokens:
            return (
                f"context window {card.context_window_tokens} tokens < {need} needed "
                f"({request.input_tokens} prompt + {request.max_output_tokens or 0} max output)"
            )
        if (
            request.max_output_tokens is not None
            and request.max_output_tokens > card.max_output_tokens
        ):
            return (
                f"max output {card.max_output_tokens} tokens < "
                f"{request.max_output_tokens} requested"
            )
        if request.max_ttft_s is not None and card.ttft_s > request.max_ttft_s:
            return f"TTFT prior {card.ttft_s:.2f} s > SLO {request.max_ttft_s:.2f} s"
        return ""

    @staticmethod
    def _estimate_violation(card: ModelCard, c: CandidateScore, request: RouteRequest) -> str:
        if request.max_cost_usd is not None:
            if c.cost_usd is None:
                return "unpriced, and the request has a cost ceiling"
            if c.cost_usd > request.max_cost_usd:
                return f"estimated cost ${c.cost_usd:.6f} > ceiling ${request.max_cost_usd:.6f}"
        if request.max_latency_s is not None and c.latency_s > request.max_latency_s:
            return f"estimated latency {c.latency_s:.2f} s > SLO {request.max_latency_s:.2f} s"
        return ""
