"""/api/v1/docs works offline: the page loads Swagger UI from the app itself, never from a CDN."""

from __future__ import annotations

import re

import httpx


def test_the_docs_page_loads_only_files_the_app_serves(api_url):
    page = httpx.get(f"{api_url}/api/v1/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(assets) == 3  # the script, the stylesheet and the icon
    assert all(url.startswith("/api/v1/docs/assets/") for url in assets), assets
    assert "'/api/v1/openapi.json'" in page.text  # the document Swagger UI renders, from the same app

    expected_types = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    for url in assets:
        response = httpx.get(f"{api_url}{url}")
        assert response.status_code == 200, url
        assert expected_types[url[url.rindex(".") :]] in response.headers["content-type"], url
        assert len(response.content) > 1000, url
    bundle = httpx.get(f"{api_url}/api/v1/docs/assets/swagger-ui-bundle.js").text
    assert "SwaggerUIBundle" in bundle


def test_the_docs_are_not_part_of_the_api_document(api_url):
    paths = httpx.get(f"{api_url}/api/v1/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith("/api/v1/docs")]
