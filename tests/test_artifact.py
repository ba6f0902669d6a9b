"""Router files: one file holds a trained router; loading rebuilds the same decisions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from turnout import Catalog, Router, RouteRequest
from turnout.artifact import FORMAT_VERSION, load_router, read_header, save_router
from turnout.catalog import ModelCard
from turnout.errors import ConfigError, UnknownModelError
from turnout.policies import CheapestPolicy, UtilityPolicy
from turnout.predictors import KNNPredictor, LengthPredictor

PROMPTS = [f"Solve {i} + {i * 3} and explain" for i in range(40)] + [
    f"Say hello to person number {i}" for i in range(40)
]
SCORES = np.array([[0.0, 1.0]] * 40 + [[1.0, 1.0]] * 40)
TOKENS = np.array([[300.0, 200.0]] * 40 + [[20.0, 10.0]] * 40)


def _catalog() -> Catalog:
    return Catalog(
        [
            ModelCard(id="cheap", provider="a", input_usd_per_mtok=0.1, output_usd_per_mtok=0.2),
            ModelCard(id="smart", provider="b", input_usd_per_mtok=3.0, output_usd_per_mtok=15.0),
        ],
        version="test-1",
    )


def _router() -> Router:
    models = ["cheap", "smart"]
    return Router(
        _catalog(),
        models,
        UtilityPolicy(willingness_to_pay_usd=0.005),
        predictor=KNNPredictor(n_neighbors=10, shrinkage=0.0).fit(PROMPTS, SCORES, models),
        length_predictor=LengthPredictor().fit(PROMPTS, TOKENS, models),
        random_state=3,
        name="toy",
    )


def test_round_trip_gives_identical_decisions(tmp_path: Path) -> None:
    router = _router()
    path = tmp_path / "toy.router"
    save_router(router, path, metadata={"dataset": "toy", "n_prompts": 80})
    back = load_router(path)
    for prompt in ("Solve 7 + 21 and explain", "Say hello to person number 99", ""):
        request = RouteRequest(prompt=prompt, input_tokens=12)
        assert back.route(request) == router.route(request)
    assert router.route(RouteRequest(prompt="Solve 7 + 21 and explain")).model == "smart"
    assert router.route(RouteRequest(prompt="Say hello to person number 99")).model == "cheap"
    assert back.candidates == ("cheap", "smart") and back.random_state == 3
    assert back.catalog["smart"].output_usd_per_mtok == 15.0 and back.catalog.version == "test-1"


def test_header_is_readable_json_without_unpickling(tmp_path: Path) -> None:
    path = tmp_path / "toy.router"
    save_router(_router(), path, metadata={"dataset": "toy"})
    header = read_header(path)
    assert header["format_version"] == FORMAT_VERSION
    assert header["policy"] == "utility"
    assert header["policy_params"]["willingness_to_pay_usd"] == 0.005
    assert header["predictor"] == "KNNPredictor" and header["candidates"] == ["cheap", "smart"]
    assert header["metadata"]["dataset"] == "toy" and "created" in header["metadata"]
    lines = path.read_bytes().split(b"\n", 2)
    assert lines[0] == b"TURNOUT-ROUTER" and json.loads(lines[1]) == header


def test_overrides_as_the_gateway_loads_it(tmp_path: Path) -> None:
    path = tmp_path / "toy.router"
    save_router(_router(), path)
    operator = Catalog(
        [ModelCard(id="cheap", provider="a", input_usd_per_mtok=9.0, output_usd_per_mtok=9.0)]
    )
    router = load_router(
        path, catalog=operator, candidates=["cheap", "smart"], policy=CheapestPolicy()
    )
    assert router.catalog["cheap"].input_usd_per_mtok == 9.0  # the operator's price wins
    assert router.catalog["smart"].input_usd_per_mtok == 3.0  # saved card fills the gap
    assert router.policy.name == "cheapest"
    assert router.route(RouteRequest(prompt="x", input_tokens=10)).model == "smart"
    with pytest.raises(UnknownModelError, match="not in the catalog"):
        load_router(path, candidates=["cheap", "gpt-9"])


def test_bad_files_are_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.router"
    path.write_bytes(b"PK\x03\x04 not a router")
    with pytest.raises(ConfigError, match="not a turnout router file"):
        load_router(path)
    future = tmp_path / "future.router"
    future.write_bytes(b'TURNOUT-ROUTER\n{"format_version": 99}\n')
    with pytest.raises(ConfigError, match="format_version 99 is not supported"):
        load_router(future)
    truncated = tmp_path / "cut.router"
    save_router(_router(), truncated)
    truncated.write_bytes(truncated.read_bytes()[:-200])
    with pytest.raises(ConfigError, match="corrupt router file"):
        load_router(truncated)
    with pytest.raises(ConfigError, match="cannot read router file"):
        load_router(tmp_path / "missing.router")
