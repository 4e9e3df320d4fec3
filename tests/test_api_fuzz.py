"""Schemathesis fuzzes every operation of the REST API over real HTTP, signed in as an organisation's admin.

Each operation gets generated valid and invalid requests (bodies, query strings, path ids, headers) against the
demo organisation's data. The API must never answer with a 5xx and every response must match what the OpenAPI
document promises for it, errors included. The run is derandomised so a fresh clone replays the same requests.
"""

from __future__ import annotations

import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.api.main import create_api
from app.services.demo import ADMIN_EMAIL, seed_demo
from tests.conftest import empty_all_tables

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def clean_db():
    """The operations share one seeded organisation (see `admin_token`) instead of starting empty."""
    yield


@pytest.fixture(scope="module")
def admin_token(api_url):
    empty_all_tables()
    password = next(c.password for c in seed_demo() if c.email == ADMIN_EMAIL)
    response = httpx.post(f"{api_url}/api/v1/auth/token", data={"username": ADMIN_EMAIL, "password": password})
    assert response.status_code == 200, response.text
    yield response.json()["access_token"]
    empty_all_tables()


# The document is built at collection time from the app itself (schemathesis' lazy fixture loader does not run
# under this pytest); the first test proves it is the one the server publishes, and every call goes over HTTP.
DOCUMENT = create_api().openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)


def test_the_fuzzed_document_is_the_published_one(api_url):
    assert httpx.get(f"{api_url}/api/v1/openapi.json").json() == DOCUMENT


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "25")),
    deadline=None,
    derandomize="FUZZ_EXAMPLES" not in os.environ,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_within_its_documented_contract(case, api_url, admin_token):
    if case.path != "/api/v1/auth/token":  # the generated case carries an empty bearer token of its own
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {admin_token}"}
    case.call_and_validate(base_url=api_url, checks=CHECKS)
