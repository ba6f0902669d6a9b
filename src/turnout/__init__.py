"""turnout: send each LLM request to the cheapest model that will still answer it well.

Public API::

    from turnout import Catalog, Router, RouteRequest, RouteDecision
"""

from turnout.catalog import Catalog, ModelCard
from turnout.errors import (
    ConfigError,
    InvalidRequestError,
    NoEligibleModelError,
    NotFittedError,
    TurnoutError,
    UnknownModelError,
)
from turnout.features import route_request_from_chat
from turnout.router import Router
from turnout.types import CandidateScore, Removal, RouteDecision, RouteRequest, Usage

__version__ = "0.1.0"

__all__ = [
    "CandidateScore",
    "Catalog",
    "ConfigError",
    "InvalidRequestError",
    "ModelCard",
    "NoEligibleModelError",
    "NotFittedError",
    "Removal",
    "RouteDecision",
    "RouteRequest",
    "Router",
    "TurnoutError",
    "UnknownModelError",
    "Usage",
    "__version__",
    "route_request_from_chat",
]
