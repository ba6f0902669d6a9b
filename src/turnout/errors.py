"""The exception tree of turnout.

Every error turnout raises on purpose derives from :class:`TurnoutError`::

    TurnoutError
    ├── ConfigError              settings, YAML or catalog data; raised at start-up
    ├── DatasetError             a malformed outcome-dataset line (file, line, field)
    ├── InvalidRequestError      bad caller input -> HTTP 400
    │   └── AdmissionError           refused at admission (.status_code, .code, .error_type)
    │       ├── AuthenticationError      401: missing, invalid or revoked key
    │       ├── PermissionDeniedError    403: the key may not call this route
    │       ├── RateLimitExceeded        429 rate_limit_exceeded (.retry_after_s)
    │       └── BudgetExceeded           429 budget_exceeded (.retry_after_s)
    ├── RoutingError
    │   ├── UnknownModelError        a model id not in the catalog
    │   ├── UnknownPolicyError       a policy name not in the registry
    │   ├── UnknownPredictorError    a predictor name not in the registry
    │   └── NoEligibleModelError     constraints removed every candidate
    ├── NotFittedError           a predictor used before ``fit`` (also a ValueError)
    ├── ProviderError            an upstream call failed (.provider, .status_code, .retryable)
    │   ├── ProviderTimeout          connect, first byte, idle gap or total timeout
    │   ├── ProviderConnectionError  the connection could not be made or was dropped
    │   ├── RateLimited              429 from the upstream (.retry_after_s)
    │   ├── AuthFailed               401 or 403 from the upstream
    │   ├── ContextTooLong           the upstream says the prompt does not fit
    │   └── UpstreamBadRequest       another non-retryable 4xx (400, 404, 413, 422)
    └── StorageError             the ledger, keys or budgets store failed

The gateway maps this tree to OpenAI-shaped error bodies in one place
(``turnout.gateway.errors``).
"""

from __future__ import annotations

__all__ = [
    "AdmissionError",
    "AuthFailed",
    "AuthenticationError",
    "BudgetExceeded",
    "ConfigError",
    "ContextTooLong",
    "DatasetError",
    "InvalidRequestError",
    "NoEligibleModelError",
    "NotFittedError",
    "PermissionDeniedError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeout",
    "RateLimitExceeded",
    "RateLimited",
    "RoutingError",
    "StorageError",
    "TurnoutError",
    "UnknownModelError",
    "UnknownPolicyError",
    "UnknownPredictorError",
    "UpstreamBadRequest",
]


class TurnoutError(Exception):
    """Base class of every error turnout raises on purpose."""


class ConfigError(TurnoutError, ValueError):
    """Invalid settings, YAML or catalog data.

    The message names the field (as a dotted path) and the bad value.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class DatasetError(TurnoutError, ValueError):
    """A malformed outcome-dataset line; the message names file, line and field."""

    def __init__(self, message: str, *, path: str, line: int, field: str | None) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.field = field


class InvalidRequestError(TurnoutError, ValueError):
    """Bad caller input; the gateway answers HTTP 400 (or ``status_code``)."""

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status_code: int = 400,
    ) -> None:
        super().__init__(message)
        self.param = param
        self.code = code
        self.status_code = status_code


class AdmissionError(InvalidRequestError):
    """A request refused at admission (auth, route permission, rate limit, budget).

    Attributes:
        status_code: HTTP status (401, 403 or 429).
        code: OpenAI-style error code (``"invalid_api_key"``, ``"budget_exceeded"`` ...).
        error_type: OpenAI-style error type for the body's ``"type"`` field.
        retry_after_s: Seconds after which a retry may succeed (429 only), else ``None``.
    """

    default_status_code = 400
    default_code = "request_refused"
    error_type = "invalid_request_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retry_after_s: float | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(
            message,
            param=param,
            code=code or self.default_code,
            status_code=self.default_status_code,
        )
        self.retry_after_s = retry_after_s


class AuthenticationError(AdmissionError):
    """HTTP 401: the API key is missing, malformed, unknown or revoked."""

    default_status_code = 401
    default_code = "invalid_api_key"
    error_type = "authentication_error"


class PermissionDeniedError(AdmissionError):
    """HTTP 403: the key may not call this route (or an admin-only endpoint)."""

    default_status_code = 403
    default_code = "route_not_allowed"
    error_type = "permission_error"


class RateLimitExceeded(AdmissionError):
    """HTTP 429 with code ``rate_limit_exceeded``: the key's RPM or TPM limit is reached."""

    default_status_code = 429
    default_code = "rate_limit_exceeded"
    error_type = "rate_limit_error"


class BudgetExceeded(AdmissionError):
    """HTTP 429 with code ``budget_exceeded``: the worst-case cost does not fit the budget."""

    default_status_code = 429
    default_code = "budget_exceeded"
    error_type = "insufficient_quota"


class RoutingError(TurnoutError):
    """The router could not produce a decision."""


class UnknownModelError(RoutingError, KeyError):
    """A model id that is not in the catalog."""

    def __init__(self, model: str) -> None:
        super().__init__(f"unknown model {model!r}: it is not in the catalog")
        self.model = model

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return str(self.args[0])


class UnknownPolicyError(RoutingError, KeyError):
    """A policy name that is not in ``turnout.policies.POLICIES``."""

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownPredictorError(RoutingError, KeyError):
    """A predictor name that is not in ``turnout.predictors.PREDICTORS``."""

    def __str__(self) -> str:
        return str(self.args[0])


class NoEligibleModelError(RoutingError):
    """Hard constraints removed every candidate.

    Attributes:
        removed: ``(model, reason)`` for each candidate that was removed.
    """

    def __init__(self, message: str, removed: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.removed = removed


class NotFittedError(TurnoutError, ValueError):
    """A predictor was used before ``fit`` (mirrors scikit-learn's NotFittedError)."""


class ProviderError(TurnoutError):
    """An upstream call failed.

    Attributes:
        provider: Name of the provider adapter (``"openai"``, ``"anthropic"`` ...).
        status_code: HTTP status from the upstream, or ``None`` if there was none.
        retryable: Whether retry, fallback and the circuit breaker apply.
        body: The upstream's error body (already parsed JSON, or text), if any.
    """

    retryable: bool = True

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status_code: int | None = None,
        body: object = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status_code = status_code
        self.body = body
        if retryable is not None:
            self.retryable = retryable


class ProviderTimeout(ProviderError):
    """Connect, time-to-first-byte, idle-gap or total timeout."""


class ProviderConnectionError(ProviderError):
    """The connection could not be made, or was dropped mid-response."""


class RateLimited(ProviderError):
    """HTTP 429 from the upstream.

    Attributes:
        retry_after_s: Seconds the upstream asked us to wait, if it said.
    """

    def __init__(
        self, message: str, *, retry_after_s: float | None = None, **kwargs: object
    ) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after_s = retry_after_s


class AuthFailed(ProviderError):
    """HTTP 401 or 403 from the upstream: not retried, no fallback, no cooldown."""

    retryable = False


class ContextTooLong(ProviderError):
    """The upstream says the prompt does not fit its context window."""

    retryable = False


class UpstreamBadRequest(ProviderError):
    """A non-retryable 4xx (400, 404, 413, 422): returned to the client as it is."""

    retryable = False


class StorageError(TurnoutError):
    """The ledger, key or budget store failed."""
