"""Cost in USD of a request from its :class:`~turnout.types.Usage` and the model's card.

Formula (per-token prices are the card's ``usd_per_mtok`` / 1e6)::

    cost_usd = (input - cached - cache_write) * input_price
             + cached * cached_input_price        (input price if the card has none)
             + cache_write * cache_write_price    (input price if the card has none)
             + output * output_price              (reasoning tokens are output tokens)

The result is rounded to 1e-12 USD so that exact list prices give exact sums
(2006 input of which 1920 cached, 300 output at 2.50/1.25/10 gives 0.005615).
"""

from __future__ import annotations

from turnout.catalog import ModelCard
from turnout.types import Usage

__all__ = ["cost_usd", "estimate_cost_usd"]


def cost_usd(usage: Usage, card: ModelCard) -> float | None:
    """Cost in USD of ``usage`` on ``card``'s model.

    Args:
        usage: Normalised token usage.
        card: The model's card (prices in USD per 1M tokens).

    Returns:
        The cost in USD, or ``None`` if the model is unpriced (never a guessed $0).
    """
    if card.input_usd_per_mtok is None or card.output_usd_per_mtok is None:
        return None
    input_price = card.input_usd_per_mtok
    cached_price = card.cached_input_usd_per_mtok
    write_price = card.cache_write_usd_per_mtok
    uncached = max(
        usage.input_tokens - usage.cached_input_tokens - usage.cache_write_input_tokens, 0
    )
    micro_usd = (
        uncached * input_price
        + usage.cached_input_tokens * (input_price if cached_price is None else cached_price)
        + usage.cache_write_input_tokens * (input_price if write_price is None else write_price)
        + usage.output_tokens * card.output_usd_per_mtok
    )
    return round(micro_usd / 1e6, 12)


def estimate_cost_usd(input_tokens: float, output_tokens: float, card: ModelCard) -> float | None:
    """Modelled cost in USD of ``input_tokens`` uncached input and ``output_tokens`` output.

    Returns:
        The cost in USD, or ``None`` if the model is unpriced.
    """
    if card.input_usd_per_mtok is None or card.output_usd_per_mtok is None:
        return None
    return (input_tokens * card.input_usd_per_mtok + output_tokens * card.output_usd_per_mtok) / 1e6
