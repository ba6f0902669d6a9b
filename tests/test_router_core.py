import pytest

from turnout import Catalog, NoEligibleModelError, Router, RouteRequest
from turnout.accounting import cost_usd
from turnout.catalog import ModelCard
from turnout.policies import CheapestPolicy, FixedPolicy
from turnout.types import Usage


def _catalog() -> Catalog:
    return Catalog(
        [
            ModelCard(
                id="small",
                provider="x",
                input_usd_per_mtok=0.1,
                output_usd_per_mtok=0.4,
                context_window_tokens=8_000,
            ),
            ModelCard(
                id="big",
                provider="y",
                input_usd_per_mtok=3.0,
                output_usd_per_mtok=15.0,
                context_window_tokens=200_000,
                capabilities=frozenset({"vision"}),
            ),
        ]
    )


def test_openai_cached_usage_costs_exactly() -> None:
    card = ModelCard(
        id="m",
        provider="openai",
        input_usd_per_mtok=2.5,
        cached_input_usd_per_mtok=1.25,
        output_usd_per_mtok=10,
    )
    usage = Usage(input_tokens=2006, cached_input_tokens=1920, output_tokens=300)
    assert cost_usd(usage, card) == 0.005615


def test_unpriced_model_costs_none_not_zero() -> None:
    assert cost_usd(Usage(input_tokens=10), ModelCard(id="m", provider="p")) is None


def test_constraints_remove_with_reasons() -> None:
    router = Router(_catalog(), ["small", "big"], CheapestPolicy())
    decision = router.route(RouteRequest(prompt="hi", input_tokens=10_000))
    assert decision.model == "big"
    assert decision.removed[0].model == "small"
    assert "context window" in decision.removed[0].reason
    vision = router.route(RouteRequest(required_capabilities=frozenset({"vision"})))
    assert vision.model == "big" and "vision" in vision.removed[0].reason


def test_no_eligible_model_lists_every_removal() -> None:
    router = Router(_catalog(), ["small", "big"], FixedPolicy("big"))
    with pytest.raises(NoEligibleModelError, match="allow-list") as info:
        router.route(RouteRequest(allowed_models=frozenset()))
    assert {m for m, _ in info.value.removed} == {"small", "big"}


def test_empty_prompt_gets_a_decision_and_fallbacks_are_ranked() -> None:
    decision = Router(_catalog(), ["big", "small"], CheapestPolicy()).route(RouteRequest())
    assert decision.ranked == ("small", "big")


def test_unconstrained_fast_path_matches_the_general_checks() -> None:
    """Requests without constraints take a shortcut; its decisions equal the general path's."""
    from turnout.accounting import estimate_cost_usd

    catalog = Catalog(
        [
            *(_catalog()[m] for m in ("small", "big")),
            ModelCard(id="unpriced", provider="z", context_window_tokens=50_000),
            ModelCard(id="half", provider="z", input_usd_per_mtok=1.0, context_window_tokens=9_000),
        ]
    )
    router = Router(catalog, ["small", "big", "unpriced", "half"], CheapestPolicy())
    for tokens in (10, 8_000, 8_001, 9_001, 60_000):
        fast = router.route(RouteRequest(prompt="p", input_tokens=tokens))
        # An allow-list naming every candidate takes the general path and removes nothing more.
        general = router.route(
            RouteRequest(
                prompt="p", input_tokens=tokens, allowed_models=frozenset(router.candidates)
            )
        )
        assert fast.ranked == general.ranked
        assert fast.removed == general.removed
        assert fast.candidates == general.candidates
        for c in fast.candidates:
            card = catalog[c.model]
            assert c.cost_usd == estimate_cost_usd(tokens, c.output_tokens, card)
            assert c.latency_s == card.ttft_s + c.output_tokens / card.output_tokens_per_s
