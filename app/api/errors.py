"""One error shape for the whole API, and the error responses each operation documents.

Every error, whether a service refused the request, FastAPI could not read it, or the edge cut it off, is
`{"detail": "<a sentence for a person>", "fields": {"<field>": "<what is wrong>"}}` (`fields` only for 422), so a
client needs one error parser and the OpenAPI document can say exactly what comes back.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.services.errors import ServiceError, ValidationFailed


class ErrorOut(BaseModel):
    detail: str = Field(description="what went wrong, written for the person who sent the request")
    fields: dict[str, str] | None = Field(None, description="422 only: each invalid field and what is wrong with it")


_DESCRIPTIONS = {
    400: "the request cannot be read (e.g. a body that is not UTF-8 JSON)",
    401: "no token, or the token is invalid, expired or revoked",
    403: "the signed-in account's role may not do this",
    404: "no such record in the caller's organisation",
    409: "the change conflicts with existing data or with a quota",
    413: "the request body is over this route's size limit",
    422: "a field is invalid; `fields` says which and why",
    429: "too many requests; `Retry-After` says how many seconds to wait",
    503: "a service this depends on is unreachable; try again later",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses, all with the `ErrorOut` body."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": ErrorOut, "description": _DESCRIPTIONS[status]}
        if status == 429:
            entry["headers"] = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
        documented[status] = entry
    return documented


# Every authenticated operation: unreadable body, bad token, wrong role, body too large, invalid input, a quota
# or rate limit.
AUTHENTICATED = responses(400, 401, 403, 413, 422, 429)
NOT_FOUND = responses(404)


def _field_name(location: tuple) -> str:
    """('body', 'contact', 'email') -> 'contact.email'; the request part ('body', 'query', ...) is dropped."""
    parts = [str(p) for p in location[1:]] or [str(p) for p in location]
    return ".".join(parts)


def _validation_fields(exc: RequestValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for error in exc.errors():
        fields.setdefault(_field_name(tuple(error.get("loc", ()))), str(error.get("msg", "is invalid")))
    return fields


def install(api: FastAPI) -> None:
    @api.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        body: dict = {"detail": exc.message}
        if isinstance(exc, ValidationFailed):
            body["fields"] = exc.fields
        headers = {}
        if getattr(exc, "retry_after_seconds", None):  # rate limits and quotas say when to come back
            headers["Retry-After"] = str(exc.retry_after_seconds)
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @api.exception_handler(RequestValidationError)
    async def unreadable_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = _validation_fields(exc)
        summary = "; ".join(f"{name}: {message}" if name else message for name, message in fields.items())
        return JSONResponse({"detail": f"The request is invalid. {summary}", "fields": fields}, status_code=422)

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)
