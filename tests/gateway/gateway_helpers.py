"""Config builders shared by the gateway tests (imported as a plain module)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Test models: prices in USD per 1M tokens; context windows chosen for the fallback cases.
TEST_MODELS: dict[str, dict[str, Any]] = {
    "model-a": {
        "provider": "test",
        "input_usd_per_mtok": 1.0,
        "output_usd_per_mtok": 2.0,
        "context_window_tokens": 200_000,
        "max_output_tokens": 4096,
        "quality_prior": 0.9,
    },
    "model-b": {
        "provider": "test",
        "input_usd_per_mtok": 2.0,
        "output_usd_per_mtok": 4.0,
        "context_window_tokens": 8_000,
        "max_output_tokens": 4096,
        "quality_prior": 0.8,
    },
    "model-c": {
        "provider": "test",
        "input_usd_per_mtok": 3.0,
        "output_usd_per_mtok": 6.0,
        "context_window_tokens": 200_000,
        "max_output_tokens": 4096,
        "quality_prior": 0.7,
    },
    "gpt-x": {
        "provider": "openai",
        "input_usd_per_mtok": 2.5,
        "cached_input_usd_per_mtok": 1.25,
        "output_usd_per_mtok": 10.0,
    },
    "free-x": {"provider": "test"},  # unpriced
}


def deployment(url: str, model: str, **extra: Any) -> dict[str, Any]:
    """A deployment config dict for an upstream at ``url`` serving catalog ``model``."""
    dep: dict[str, Any] = {
        "provider": "openai",
        "base_url": url,
        "api_key_env": "TEST_UPSTREAM_KEY",
        "model": f"upstream-{model}",
        "catalog_model": model,
        "timeouts": {"connect_s": 1, "first_byte_s": 2, "idle_s": 2, "total_s": 10},
    }
    dep.update(extra)
    return dep


def base_config(
    deployments: Mapping[str, Any], routes: Mapping[str, Any], **extra: Any
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "deployments": dict(deployments),
        "models": TEST_MODELS,
        "routes": dict(routes),
        "keys": {"required": False, "admin_key_env": None},
        "storage": {"url": "memory://", "counters_url": "memory://"},
        "reliability": {"backoff_base_s": 0.01, "backoff_max_s": 0.05},
    }
    config.update(extra)
    return config


ENV = {"TEST_UPSTREAM_KEY": "sk-upstream-deployment-key"}
