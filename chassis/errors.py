"""The error vocabulary of Givance, as plain Python.

Domain rules, handlers and stores raise these; the server interceptor turns them into
canonical gRPC codes with google.rpc.Status details (AIP-193). Nothing here imports grpc,
so a domain module may raise them and stay free of transport code.
"""

from __future__ import annotations

from collections.abc import Iterable


class ServiceError(Exception):
    """Base of every error a client is meant to see."""

    code = "UNKNOWN"

    def __init__(self, message: str, *, reason: str | None = None, metadata: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.metadata = metadata or {}


class InvalidArgument(ServiceError):
    """Bad input. Always names the fields: (field path, description) pairs."""

    code = "INVALID_ARGUMENT"

    def __init__(self, violations: Iterable[tuple[str, str]], message: str | None = None):
        self.violations = list(violations)
        if not self.violations:
            raise ValueError("InvalidArgument needs at least one field violation")
        super().__init__(message or "; ".join(f"{f}: {d}" for f, d in self.violations))

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        return cls([(field, description)])


class Violations:
    """Collects every field violation of a request, then raises them together."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, field: str, description: str) -> None:
        self.items.append((field, description))

    def check_text(self, field: str, value: str, maximum: int, *, required: bool = False) -> bool:
        """The common text checks, in their common words: an empty value "is required" (when it is),
        a long one "must be at most N characters". True when the value passed both."""
        if not value:
            if required:
                self.add(field, "is required")
            return not required
        if len(value) > maximum:
            self.add(field, f"must be at most {maximum} characters")
            return False
        return True

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)


class NotFound(ServiceError):
    code = "NOT_FOUND"


class AlreadyExists(ServiceError):
    code = "ALREADY_EXISTS"


class FailedPrecondition(ServiceError):
    code = "FAILED_PRECONDITION"


class Aborted(ServiceError):
    """Concurrency conflicts: a stale etag."""

    code = "ABORTED"


class Unauthenticated(ServiceError):
    code = "UNAUTHENTICATED"


class PermissionDenied(ServiceError):
    code = "PERMISSION_DENIED"


class ResourceExhausted(ServiceError):
    """A limit was reached (a rate, a queue): `retry_after` seconds, when known, travel as a
    google.rpc.RetryInfo detail and as ErrorInfo metadata `retry_after_seconds`."""

    code = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, *, reason: str | None = None, metadata: dict[str, str] | None = None,
                 retry_after: float | None = None):
        self.retry_after = retry_after
        if retry_after is not None:
            metadata = {**(metadata or {}), "retry_after_seconds": str(max(1, round(retry_after)))}
        super().__init__(message, reason=reason, metadata=metadata)


class Unavailable(ServiceError):
    """A backing service (the database, the broker) cannot be reached: the client may retry."""

    code = "UNAVAILABLE"


class DeadlineExceeded(ServiceError):
    """A limit of time the server sets ran out (a client stream idle too long)."""

    code = "DEADLINE_EXCEEDED"
