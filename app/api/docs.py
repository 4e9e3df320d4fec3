"""The REST API's interactive documentation (Swagger UI at /api/v1/docs), served from files installed with the app.

FastAPI's own page loads Swagger UI from a CDN, so offline and locked-down installs showed a blank page. The files
come from the `fastapi-offline` package, which ships Swagger UI 5: the first version that renders OpenAPI 3.1, the
version FastAPI writes (`swagger-ui-bundle` still ships 4.x, which refuses the document). Only its files are used;
the page itself is FastAPI's `get_swagger_ui_html`. There is no ReDoc page.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/api/v1/docs"
ASSETS_URL = f"{DOCS_URL}/assets"
OAUTH2_REDIRECT_URL = f"{DOCS_URL}/oauth2-redirect"
_ASSETS_DIR = str(files("fastapi_offline") / "static")


def install(api: FastAPI) -> None:
    """Serve the docs page and its files (create the app with `docs_url=None`, or FastAPI adds its CDN page)."""
    api.mount(ASSETS_URL, StaticFiles(directory=_ASSETS_DIR), name="api-docs-assets")

    @api.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=api.openapi_url,
            title=f"{api.title} · docs",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
        )

    @api.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
