"""Router files: a trained router (and a lone predictor) saved to one file and loaded back.

A router file holds everything the gateway and ``turnout route`` need to rebuild the
:class:`~turnout.router.Router` that was trained: the candidates, the catalog cards used
(prices, limits, latency priors), the fitted quality predictor, the output-length predictor,
the policy (name and parameters) and training metadata (dataset, date, predictor name...).

File layout::

    line 1  TURNOUT-ROUTER              magic line (TURNOUT-PREDICTOR for a lone predictor)
    line 2  {"format_version": 1, ...}  one JSON line: readable with :func:`read_header`
    rest    pickle                      the payload

**Security: loading runs pickle.** A router file can execute arbitrary code when loaded; load
only files you trained yourself or otherwise trust. :func:`read_header` reads the JSON line
without unpickling anything.
"""

from __future__ import annotations

import datetime as dt
import json
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from turnout import __version__
from turnout.catalog import Catalog, ModelCard
from turnout.errors import ConfigError
from turnout.policies import POLICIES
from turnout.policies.base import Policy
from turnout.router import Router

__all__ = [
    "FORMAT_VERSION",
    "load_predictor",
    "load_router",
    "policy_params",
    "read_header",
    "save_predictor",
    "save_router",
]

#: Version of the file layout and payload; files of another version are refused.
FORMAT_VERSION = 1
_ROUTER_MAGIC = b"TURNOUT-ROUTER\n"
_PREDICTOR_MAGIC = b"TURNOUT-PREDICTOR\n"


def policy_params(policy: Policy) -> dict[str, Any]:
    """The public constructor parameters of a policy (its public instance attributes)."""
    return {k: v for k, v in vars(policy).items() if not k.startswith("_")}


def _write(path: str | Path, magic: bytes, header: Mapping[str, Any], payload: object) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(magic)
        f.write(json.dumps(dict(header), default=str, sort_keys=True).encode("utf-8") + b"\n")
        pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(target)


def _read(path: str | Path, magic: bytes, *, payload: bool) -> tuple[dict[str, Any], Any]:
    source = Path(path)
    kind = "predictor" if magic == _PREDICTOR_MAGIC else "router"
    try:
        with source.open("rb") as f:
            head = f.readline()
            if head != magic:
                raise ConfigError(
                    f"{source}: not a turnout {kind} file (first line {head[:40]!r})",
                    field="path",
                )
            header = json.loads(f.readline().decode("utf-8"))
            version = header.get("format_version")
            if version != FORMAT_VERSION:
                raise ConfigError(
                    f"{source}: format_version {version!r} is not supported "
                    f"(this turnout reads {FORMAT_VERSION}); retrain with turnout {__version__}",
                    field="format_version",
                )
            body = pickle.load(f) if payload else None  # noqa: S301 - documented: trusted files
    except OSError as exc:
        raise ConfigError(f"cannot read {kind} file {source}: {exc}", field="path") from exc
    except (json.JSONDecodeError, UnicodeDecodeError, pickle.UnpicklingError, EOFError) as exc:
        raise ConfigError(f"{source}: corrupt {kind} file: {exc}", field="path") from exc
    return header, body


def read_header(path: str | Path) -> dict[str, Any]:
    """The JSON header of a router or predictor file, without unpickling the payload.

    Raises:
        ConfigError: If the file is missing, not a turnout file, or of another format version.
    """
    try:
        with Path(path).open("rb") as f:
            first = f.readline()
    except OSError as exc:
        raise ConfigError(f"cannot read router file {path}: {exc}", field="path") from exc
    magic = _PREDICTOR_MAGIC if first == _PREDICTOR_MAGIC else _ROUTER_MAGIC
    return _read(path, magic, payload=False)[0]


def save_predictor(predictor: object, path: str | Path) -> None:
    """Save a fitted predictor to one file (see the module docstring for the layout)."""
    header = {
        "format_version": FORMAT_VERSION,
        "turnout_version": __version__,
        "kind": "predictor",
        "class": type(predictor).__name__,
        "models": list(getattr(predictor, "models_", [])),
    }
    _write(path, _PREDICTOR_MAGIC, header, predictor)


def load_predictor(path: str | Path) -> Any:
    """Load a predictor saved by :func:`save_predictor` (runs pickle: trusted files only).

    Raises:
        ConfigError: If the file is unreadable, not a predictor file or of another version.
    """
    return _read(path, _PREDICTOR_MAGIC, payload=True)[1]


def save_router(
    router: Router, path: str | Path, *, metadata: Mapping[str, Any] | None = None
) -> None:
    """Save ``router`` (candidates, cards, predictors, policy) and ``metadata`` to one file.

    Args:
        router: The router to save; its predictors should be fitted.
        path: Target file (written atomically through a temporary file).
        metadata: Training facts to keep (dataset, predictor name, split, scores...); JSON
            values. ``created`` (UTC, ISO 8601) and turnout's version are added.
    """
    policy = router.policy
    meta = {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "turnout_version": __version__,
        **dict(metadata or {}),
    }
    header = {
        "format_version": FORMAT_VERSION,
        "kind": "router",
        "name": router.name,
        "candidates": list(router.candidates),
        "policy": policy.name,
        "policy_params": policy_params(policy),
        "predictor": type(router.predictor).__name__ if router.predictor is not None else None,
        "length_predictor": (
            type(router.length_predictor).__name__ if router.length_predictor is not None else None
        ),
        "metadata": meta,
    }
    payload = {
        "candidates": list(router.candidates),
        "cards": [router.catalog[m].model_dump(mode="json") for m in router.candidates],
        "catalog_version": router.catalog.version,
        "predictor": router.predictor,
        "length_predictor": router.length_predictor,
        "policy": policy,
        "policy_name": policy.name,
        "policy_params": policy_params(policy),
        "random_state": router.random_state,
        "name": router.name,
        "metadata": meta,
    }
    _write(path, _ROUTER_MAGIC, header, payload)


def load_router(
    path: str | Path,
    *,
    catalog: Catalog | None = None,
    candidates: Sequence[str] | None = None,
    policy: Policy | None = None,
    random_state: int | None = None,
) -> Router:
    """Rebuild a router saved by :func:`save_router` (runs pickle: trusted files only).

    Args:
        path: The router file.
        catalog: Cards to route with (e.g. the operator's catalog); ``None`` uses the cards
            saved in the file. Saved cards of models missing from ``catalog`` are added.
        candidates: Override the saved candidates (each must be in the catalog); models the
            predictor does not know fall back to their card's ``quality_prior``.
        policy: Override the saved policy.
        random_state: Override the saved seed.

    Returns:
        The router (the training metadata is in :func:`read_header`'s ``metadata``).

    Raises:
        ConfigError: If the file is unreadable, not a router file, of another format version,
            or names a policy that is not registered.
        UnknownModelError: If a candidate is in neither the catalog nor the file.
    """
    _, payload = _read(path, _ROUTER_MAGIC, payload=True)
    saved = [ModelCard.model_validate(c) for c in payload["cards"]]
    if catalog is None:
        cards = Catalog(saved, version=str(payload.get("catalog_version", "")))
    else:
        known = set(catalog)
        cards = catalog.merged(
            {c.id: c.model_dump(exclude={"id"}) for c in saved if c.id not in known}
        )
    chosen_policy = policy if policy is not None else payload["policy"]
    if policy is None and payload["policy_name"] not in POLICIES:
        raise ConfigError(
            f"{path}: policy {payload['policy_name']!r} is not registered in POLICIES",
            field="policy",
        )
    return Router(
        cards,
        list(candidates) if candidates is not None else payload["candidates"],
        chosen_policy,
        predictor=payload["predictor"],
        length_predictor=payload["length_predictor"],
        random_state=payload["random_state"] if random_state is None else random_state,
        name=payload["name"],
    )
