"""Domain errors: every context raises these; the API maps each family to one HTTP status."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a user can cause; ``code`` is the stable machine-readable name."""

    code = "domain_error"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class NotFound(DomainError):
    """The thing named does not exist (or the caller may not know that it does)."""

    code = "not_found"


class Conflict(DomainError):
    """The request is well formed but clashes with the current state."""

    code = "conflict"


class InvalidRequest(DomainError):
    """The request is well formed JSON but asks for something that cannot be."""

    code = "invalid_request"


class PermissionDenied(DomainError):
    """The caller is known but may not do this."""

    code = "forbidden"


class NotAuthenticated(DomainError):
    """No valid credentials came with the request."""

    code = "not_authenticated"


class Unavailable(DomainError):
    """Another service this request needs does not answer; trying again later may work."""

    code = "unavailable"
