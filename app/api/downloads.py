"""File downloads: the contacts export and an import's error report, as streamed CSV attachments.

Both accept a bearer token (API clients) or a short-lived `token` query parameter made by the page for one URL
(browsers cannot send a header on a plain download). Admins of the organisation only, like the pages.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterator
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.api import errors
from app.api.deps import BearerDep, resolve_bearer
from app.services.accounts import auth
from app.services.crm import contact_search
from app.services.errors import NotAuthenticated
from app.services.imports import csv_export, csv_import
from app.services.mail import analytics

router = APIRouter(
    prefix="/api/v1",
    tags=["files"],
    responses={
        200: {
            "description": "a CSV file (UTF-8 with a byte order mark) as an attachment",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **errors.AUTHENTICATED,
    },
)
EXPORT_PATH = "/api/v1/contacts/export.csv"


def error_report_path(import_id: str) -> str:
    return f"/api/v1/imports/{import_id}/errors.csv"


async def download_principal(request: Request, credentials: BearerDep, token: str = "") -> auth.Principal:
    if credentials is not None:
        return await resolve_bearer(credentials)
    if not token:
        raise HTTPException(401, "Send an 'Authorization: Bearer <token>' header, or open the link from the app.")
    try:
        return await run_in_threadpool(auth.resolve_download_token, token, request.url.path, dict(request.query_params))
    except NotAuthenticated as exc:
        raise HTTPException(401, exc.message) from None


DownloadPrincipalDep = Annotated[auth.Principal, Depends(download_principal)]


def content_disposition(filename: str) -> str:
    """`attachment` with the file's name, for any name (RFC 6266): an ASCII `filename` every client reads and,
    when the name is not plain ASCII, the exact name as RFC 5987 `filename*=UTF-8''...`, which browsers prefer.
    An import's error report is named after the uploaded file, so the name is the uploader's text: control
    characters, quotes and backslashes never reach the header."""
    name = "".join(c for c in unicodedata.normalize("NFC", filename) if unicodedata.category(c)[0] != "C").strip()
    name = name or "download.csv"
    stem, ext = os.path.splitext(name)
    ascii_stem = re.sub(r"[^A-Za-z0-9 ._()-]+", "_", _ascii(stem)).strip(" ._") or "download"
    ascii_ext = re.sub(r"[^A-Za-z0-9]+", "", _ascii(ext))
    fallback = ascii_stem + (f".{ascii_ext}" if ascii_ext else "")
    if fallback == name:
        return f'attachment; filename="{fallback}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _ascii(text: str) -> str:
    """Latin letters without their accents ("Café" -> "Cafe"); other scripts drop out."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _attachment(chunks: Iterator[str], filename: str) -> StreamingResponse:
    """The file as a streamed response. The body is a plain iterator, which Starlette advances in its thread
    pool, so producing a large export's chunks never blocks the event loop."""

    def body() -> Iterator[bytes]:
        yield "\ufeff".encode("utf-8")  # a BOM first, so Excel opens the UTF-8 file with its accents intact
        for chunk in chunks:
            yield chunk.encode("utf-8")

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": content_disposition(filename),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/contacts/export.csv", summary="Export contacts (the current filter) as CSV")
def export_contacts(
    principal: DownloadPrincipalDep,
    q: str = "",
    status: str = "",
    field: str = "",
    value: str = "",
    sort: str = Query("newest", description=", ".join(contact_search.SORTS)),
):
    query = contact_search.ContactQuery(q=q, status=status, field=field, value=value, sort=sort)
    return _attachment(_primed(csv_export.export_contacts(principal.scope, query)), "contacts.csv")


@router.get("/imports/{import_id}/errors.csv", summary="An import's per-row errors as CSV", responses=errors.NOT_FOUND)
def import_errors(import_id: str, principal: DownloadPrincipalDep):
    filename, chunks = csv_import.error_report(principal.scope, import_id)
    return _attachment(chunks, filename)


def campaign_analytics_path(campaign_id: str) -> str:
    return f"/api/v1/email-campaigns/{campaign_id}/analytics.csv"


def campaign_recipients_path(campaign_id: str) -> str:
    return f"/api/v1/email-campaigns/{campaign_id}/recipients.csv"


@router.get(
    "/email-campaigns/{campaign_id}/analytics.csv",
    summary="A campaign's figures, rates, links and activity over time as CSV",
    responses=errors.NOT_FOUND,
)
def campaign_analytics_csv(campaign_id: str, principal: DownloadPrincipalDep):
    filename, chunks = analytics.export_analytics(principal.scope, campaign_id)
    return _attachment(chunks, filename)


@router.get(
    "/email-campaigns/{campaign_id}/recipients.csv",
    summary="A campaign's recipients and what each did, as CSV",
    responses=errors.NOT_FOUND,
)
def campaign_recipients_csv(
    campaign_id: str,
    principal: DownloadPrincipalDep,
    show: str = Query("all", description=", ".join(analytics.FILTERS)),
):
    filename, chunks = analytics.export_recipients(principal.scope, campaign_id, show)
    return _attachment(chunks, filename)


def _primed(chunks: Iterator[str]) -> Iterator[str]:
    """Run the generator up to its first piece, so permission and filter errors surface as HTTP errors
    before the response starts."""
    first = next(chunks)

    def rest() -> Iterator[str]:
        yield first
        yield from chunks

    return rest()
