"""Every error the connector raises, as one shallow tree.

    ConnectorError
    ├── ManifestError            a data file is broken (raised at load time, never mid-automation)
    ├── InputValidationError     the action's inputs do not match its schema; nothing was sent
    ├── ConnectionConfigError    the connection is incomplete or inconsistent; the user fixes the connection
    │   └── AuthenticationError  Zoho refused the credentials (revoked refresh token, wrong data centre, …)
    ├── RateLimitedError         Zoho throttled us, or the daily allowance is spent; retryable after `retry_after`
    ├── TransientError           network failure, timeout or 5xx; retryable unless a write may have acted
    │   └── BadResponseError     a 2xx answer that is not the JSON Zoho documents (truncated, HTML, …)
    ├── PaginationError          a paginated walk that would never end (repeated or endless pages)
    └── ZohoAPIError             Zoho answered with an error; keeps its HTTP status, code, message and details
        └── NotFoundError        the record (or path) does not exist

Each error carries `retryable`, `retry_after` (seconds, or None) and `may_have_acted` (the request may have changed
something in Zoho) so that a workflow engine can do the retrying without creating duplicates, and `to_dict()` gives
the JSON form printed by the CLI and `invoke`. A Fetch All that fails midway adds `progress`: how many records were
delivered and the query that resumes the walk. Text that may echo a secret is scrubbed before it is stored.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

__all__ = [
    "AuthenticationError",
    "BadResponseError",
    "ConnectionConfigError",
    "ConnectorError",
    "InputValidationError",
    "ManifestError",
    "NotFoundError",
    "PaginationError",
    "RateLimitedError",
    "TransientError",
    "Violation",
    "WebhookRejected",
    "ZohoAPIError",
]


class ConnectorError(Exception):
    """Base of every error raised by the connector."""

    kind: ClassVar[str] = "error"
    exit_code: ClassVar[int] = 1

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        may_have_acted: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        self.may_have_acted = may_have_acted
        # Fetch All only: {"delivered": n, "resume": {query parameters that continue the walk}}
        self.progress: dict[str, Any] | None = None

    def __str__(self) -> str:
        if self.progress is None:
            return self.message
        resume = ", ".join(f"{k}={v}" for k, v in self.progress["resume"].items()) or "the first page"
        return f"{self.message} (after {self.progress['delivered']} records; resume with {resume})"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of the error, as the CLI prints it."""
        error = {
            "type": self.kind,
            "message": str(self),
            "retryable": self.retryable,
            "retry_after": self.retry_after,
            "may_have_acted": self.may_have_acted,
            **self._details(),
        }
        if self.progress is not None:
            error["progress"] = self.progress
        return {"error": error}

    def _details(self) -> dict[str, Any]:
        return {}


class ManifestError(ConnectorError):
    """A manifest, action, connection or schema file is broken; the message names the file and the problem."""

    kind = "manifest_error"
    exit_code = 2

    def __init__(self, file: str, problem: str) -> None:
        super().__init__(f"{file}: {problem}")
        self.file = file
        self.problem = problem

    def _details(self) -> dict[str, Any]:
        return {"file": self.file, "problem": self.problem}


class Violation(NamedTuple):
    """One way an input breaks its schema."""

    input: str  # the input's name, or "(inputs)" for a problem with the object itself
    pointer: str  # JSON pointer to the offending value, e.g. "/values/0/key"
    message: str  # what was expected

    def __str__(self) -> str:
        where = self.input if self.pointer in ("", f"/{self.input}") else f"{self.input} ({self.pointer})"
        return f"{where}: {self.message}"


class InputValidationError(ConnectorError):
    """The inputs do not match the action's schema. Lists every violation; nothing was sent to Zoho."""

    kind = "invalid_input"
    exit_code = 2

    def __init__(self, subject: str, violations: list[Violation]) -> None:
        lines = "\n".join(f"  - {v}" for v in violations)
        super().__init__(f"invalid inputs for {subject}:\n{lines}")
        self.subject = subject
        self.violations = violations

    def _details(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "violations": [{"input": v.input, "pointer": v.pointer, "message": v.message} for v in self.violations],
        }


class ConnectionConfigError(ConnectorError):
    """The connection cannot be used as configured; the user fixes the connection."""

    kind = "connection_error"
    exit_code = 3


class AuthenticationError(ConnectionConfigError):
    """Zoho Accounts refused a token request or a token; `reason` says which failure, the message what to do."""

    kind = "authentication_error"

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, retryable=retryable, retry_after=retry_after)
        self.reason = reason

    def _details(self) -> dict[str, Any]:
        return {"reason": self.reason}


class WebhookRejected(ConnectorError):
    """A callback that does not come from the subscribed channel (a wrong token or channel: `forged`), that arrives
    outside the channel's life (`stale`), or that cannot be read (`malformed`). Answer it with a 4xx; nothing of it
    was handed out."""

    kind = "webhook_rejected"
    exit_code = 2

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason

    def _details(self) -> dict[str, Any]:
        return {"reason": self.reason}


class RateLimitedError(ConnectorError):
    """Zoho throttled the call, or the allowance is below the configured minimum."""

    kind = "rate_limited"
    exit_code = 5

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message, retryable=True, retry_after=retry_after)
        self.status = status

    def _details(self) -> dict[str, Any]:
        return {"status": self.status}


class TransientError(ConnectorError):
    """A network failure, a timeout or a 5xx answer: the same call may well succeed later. Not retryable when it
    was a write that may have reached Zoho: re-sending it could create a duplicate."""

    kind = "transient"
    exit_code = 5

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        retryable: bool = True,
        may_have_acted: bool = False,
    ) -> None:
        super().__init__(message, retryable=retryable, retry_after=retry_after, may_have_acted=may_have_acted)
        self.status = status

    def _details(self) -> dict[str, Any]:
        return {"status": self.status}


class BadResponseError(TransientError):
    """Zoho (or something in between) answered 2xx with a body that is not the JSON expected: truncated, HTML, …"""

    kind = "bad_response"


class PaginationError(ConnectorError):
    """A paginated walk was stopped because it would never end: a page token or page repeated, no new records, or
    more pages than Zoho's documented limits allow."""

    kind = "pagination_error"
    exit_code = 4

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code

    def _details(self) -> dict[str, Any]:
        return {"code": self.code}


class ZohoAPIError(ConnectorError):
    """Zoho answered with an error. Keeps Zoho's HTTP status, code, message, details and request id."""

    kind = "zoho_error"
    exit_code = 4

    def __init__(
        self,
        *,
        status: int,
        code: str | None,
        message: str | None,
        details: Any = None,
        request_id: str | None = None,
        response: Any = None,
        retryable: bool = False,
        retry_after: float | None = None,
        may_have_acted: bool = False,
    ) -> None:
        text = f"Zoho answered HTTP {status}"
        if code:
            text += f" {code}"
        if message:
            text += f": {message}"
        super().__init__(text, retryable=retryable, retry_after=retry_after, may_have_acted=may_have_acted)
        self.status = status
        self.code = code
        self.zoho_message = message
        self.details = details
        self.request_id = request_id
        self.response = response  # the whole parsed body, for multi-record answers

    def _details(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "code": self.code,
            "zoho_message": self.zoho_message,
            "details": self.details,
            "request_id": self.request_id,
        }


class NotFoundError(ZohoAPIError):
    """The record or resource does not exist (CRM's empty answer for an id, or Zoho's not-found codes)."""

    kind = "not_found"
