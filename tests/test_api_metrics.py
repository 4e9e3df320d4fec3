"""GET /metrics over real HTTP: API latency by route template, job durations, queue depth, and who may read it."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.services import job_queue
from app.settings import get_settings
from tests.test_api import token_for


def scrape(api_url: str, **kwargs) -> dict[tuple[str, frozenset], float]:
    response = httpx.get(f"{api_url}/metrics", **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def settings_env(monkeypatch):
    """Set environment variables for the app's settings for one test (the server reads them per request)."""

    def set_env(**values: str) -> None:
        for name, val in values.items():
            monkeypatch.setenv(name, val)
        get_settings.cache_clear()

    yield set_env
    monkeypatch.undo()
    get_settings.cache_clear()


def test_api_requests_are_timed_by_route_template_and_status(api_url, make_org):
    make_org(email="ada@example.com")
    headers = {"Authorization": f"Bearer {token_for(api_url, 'ada@example.com')}"}
    missing = str(uuid.uuid4())
    before = scrape(api_url)
    assert httpx.get(f"{api_url}/api/v1/contacts/{missing}", headers=headers).status_code == 404
    assert httpx.get(f"{api_url}/api/v1/contacts", headers=headers).status_code == 200
    after = scrape(api_url)

    name = "voicedesk_api_request_duration_seconds_count"
    template = "/api/v1/contacts/{contact_id}"
    assert (
        value(after, name, method="GET", route=template, status="404")
        - value(before, name, method="GET", route=template, status="404")
        == 1
    )
    assert (
        value(after, name, method="GET", route="/api/v1/contacts", status="200")
        - value(before, name, method="GET", route="/api/v1/contacts", status="200")
        == 1
    )
    # The series are named by templates: an id never becomes a label (one series per contact would be unbounded).
    assert not any(missing in str(labels) for _, labels in after)


def test_queue_depth_is_read_from_the_database_by_kind_and_state(api_url, make_org):
    org = make_org()
    for _ in range(3):
        job_queue.enqueue("csv_import", tenant_id=org.tenant_id)
    job_queue.enqueue("housekeeping", tenant_id=org.tenant_id)
    claimed = job_queue.claim("worker-under-test", 60)  # another process's runner took one: it is running
    assert claimed is not None

    samples = scrape(api_url)
    depth = {labels: n for (name, labels), n in samples.items() if name == "voicedesk_jobs"}
    expected = {("csv_import", "queued"): 3, ("housekeeping", "queued"): 1}
    expected[(claimed.kind, "queued")] -= 1
    expected[(claimed.kind, "running")] = 1
    assert depth == {frozenset({"kind": k, "state": s}.items()): float(n) for (k, s), n in expected.items() if n}


def test_job_runs_are_timed_by_kind_and_outcome(api_url, make_org):
    from app.jobs.registry import HANDLERS
    from app.jobs.runner import Runner

    def works(ctx, payload):
        return {"ok": True}

    def breaks(ctx, payload):
        raise ValueError("the handler's own bug")

    org = make_org()
    HANDLERS["test.works"], HANDLERS["test.breaks"] = works, breaks
    try:
        before = scrape(api_url)
        job_queue.enqueue("test.works", tenant_id=org.tenant_id)
        job_queue.enqueue("test.breaks", tenant_id=org.tenant_id, max_attempts=2)
        asyncio.run(
            Runner(poll_seconds=0.1, heartbeat_seconds=0.1, retry_base_seconds=0, schedule=False).run_until_idle()
        )
        after = scrape(api_url)
    finally:
        HANDLERS.pop("test.works", None)
        HANDLERS.pop("test.breaks", None)

    name = "voicedesk_job_duration_seconds_count"
    runs = {
        (dict(labels)["kind"], dict(labels)["outcome"]): n - before.get((name, labels), 0.0)
        for (sample, labels), n in after.items()
        if sample == name and dict(labels)["kind"].startswith("test.")
    }
    assert {key: n for key, n in runs.items() if n} == {
        ("test.works", "succeeded"): 1,
        ("test.breaks", "retried"): 1,
        ("test.breaks", "failed"): 1,
    }


def test_metrics_stay_out_of_the_api_document(api_url):
    assert "/metrics" not in httpx.get(f"{api_url}/api/v1/openapi.json").json()["paths"]


# --- who may read them ---------------------------------------------------------------------------------------


def test_with_a_metrics_token_only_its_bearer_may_scrape(api_url, settings_env):
    settings_env(METRICS_TOKEN="scrape-secret-0123456789")
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": "scrape-secret-0123456789"},
    ):
        refused = httpx.get(f"{api_url}/metrics", headers=headers)  # from loopback, which alone is not enough now
        assert refused.status_code == 401
        assert refused.json()["detail"] == "Send 'Authorization: Bearer <METRICS_TOKEN>' to read the metrics."
        assert "voicedesk" not in refused.text
    assert (
        "voicedesk_api_request_duration_seconds"
        in httpx.get(f"{api_url}/metrics", headers={"Authorization": "Bearer scrape-secret-0123456789"}).text
    )


def test_without_a_token_a_request_relayed_by_an_untrusted_proxy_is_refused(api_url, settings_env):
    settings_env(TRUSTED_PROXY_HOPS="0")
    # A reverse proxy on this host connects from loopback; the address it forwards is the real client's.
    for header in ({"X-Forwarded-For": "8.8.8.8"}, {"Forwarded": "for=8.8.8.8"}, {"X-Forwarded-For": "10.0.0.5"}):
        refused = httpx.get(f"{api_url}/metrics", headers=header)
        assert refused.status_code == 403, header
        assert "loopback and private networks only" in refused.json()["detail"]


def test_without_a_token_private_clients_behind_a_trusted_proxy_may_scrape_and_public_ones_may_not(
    api_url, settings_env
):
    settings_env(TRUSTED_PROXY_HOPS="1")
    assert httpx.get(f"{api_url}/metrics", headers={"X-Forwarded-For": "8.8.8.8"}).status_code == 403
    assert httpx.get(f"{api_url}/metrics", headers={"X-Forwarded-For": "2606:4700:4700::1111"}).status_code == 403
    assert httpx.get(f"{api_url}/metrics", headers={"X-Forwarded-For": "10.1.2.3"}).status_code == 200
    assert httpx.get(f"{api_url}/metrics", headers={"X-Forwarded-For": "192.168.0.9"}).status_code == 200
