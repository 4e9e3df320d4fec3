"""Errors the services raise. Each carries a message written for the person who caused it."""

from __future__ import annotations


class ServiceError(Exception):
    """Base class: `message` is safe to show to the user."""

    status_code = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ValidationFailed(ServiceError):
    """Input was rejected; `fields` maps each field to what is wrong with it."""

    status_code = 422

    def __init__(self, fields: dict[str, str] | str):
        if isinstance(fields, str):
            fields = {"": fields}
        self.fields = fields
        super().__init__("; ".join(fields.values()))


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    status_code = 409


class PermissionDenied(ServiceError):
    status_code = 403


class NotAuthenticated(ServiceError):
    status_code = 401


class RateLimited(ServiceError):
    status_code = 429

    def __init__(self, message: str, retry_after_seconds: int):
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class Unavailable(ServiceError):
    """An outside service the action depends on could not answer; trying again later may work."""

    status_code = 503
