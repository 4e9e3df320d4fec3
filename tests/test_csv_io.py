"""CSV over the wire and on the command line: the download links, the export/error endpoints, `import-csv`."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys

import httpx
import pytest

from app.api.downloads import EXPORT_PATH, error_report_path
from app.services import auth, contacts, tokens
from app.services.demo import DEMO_SLUG, seed_demo
from app.services.contacts import ContactQuery
from tests.scratch_db import ROOT
from tests.test_csv_import import SEED_EXAMPLE, run_import


@pytest.fixture
def owner(make_org):
    principal = make_org("Harbor Dental")
    token = auth.open_session(principal)
    return auth.resolve_session(token), token


def test_export_link_downloads_the_filtered_contacts(api_url, owner):
    principal, _ = owner
    for i, status in enumerate(["lead", "customer", "customer"]):
        contacts.create_contact(principal.scope, {"business_name": f"Biz {i}", "contact_name": f"P {i}",
                                                  "contact_email": f"p{i}@x.example", "status": status})
    link = auth.download_link(principal, EXPORT_PATH, {"status": "customer", "sort": "name"})
    response = httpx.get(api_url + link)
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="contacts.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [r[1] for r in rows[1:]] == ["Biz 1", "Biz 2"]


def test_download_links_are_bound_to_their_url_session_and_time(api_url, owner, make_org, monkeypatch):
    principal, session_token = owner
    link = auth.download_link(principal, EXPORT_PATH, {"status": "lead"})
    token = link.split("token=")[1]
    assert httpx.get(f"{api_url}{EXPORT_PATH}?status=customer&token={token}").status_code == 401  # another filter
    assert httpx.get(f"{api_url}{error_report_path('x')}?token={token}").status_code == 401  # another file
    assert httpx.get(f"{api_url}{EXPORT_PATH}?status=lead&token=forged.token.value").status_code == 401
    assert httpx.get(f"{api_url}{EXPORT_PATH}").status_code == 401
    expired = tokens.sign({"sub": str(principal.user_id), "sid": str(principal.session_id),
                           "url": f"{EXPORT_PATH}?status=lead"}, audience=auth.DOWNLOAD_AUDIENCE, ttl_seconds=-5)
    assert httpx.get(f"{api_url}{EXPORT_PATH}?status=lead&token={expired}").status_code == 401
    assert httpx.get(api_url + link).status_code == 200
    auth.close_session(session_token)  # signing out revokes the link
    response = httpx.get(api_url + link)
    assert response.status_code == 401 and "expired" in response.json()["detail"]


def test_members_and_other_organisations_get_nothing(api_url, owner, make_org, make_user):
    principal, _ = owner
    done = run_import(principal.scope, SEED_EXAMPLE.replace("john@acme.com", "bad@"))
    member = auth.resolve_session(auth.open_session(make_user(principal.tenant_id)))
    for path in (EXPORT_PATH, error_report_path(done.id)):
        response = httpx.get(api_url + auth.download_link(member, path))
        assert response.status_code == 403 and "Only organisation admins" in response.text
    other = auth.resolve_session(auth.open_session(make_org("Other")))
    assert httpx.get(api_url + auth.download_link(other, error_report_path(done.id))).status_code == 404
    exported = httpx.get(api_url + auth.download_link(other, EXPORT_PATH)).content.decode("utf-8-sig")
    assert len(list(csv.reader(io.StringIO(exported)))) == 1  # the header only: nothing of Harbor Dental's


def test_error_report_endpoint_with_a_bearer_token(api_url, owner):
    principal, _ = owner
    done = run_import(principal.scope, "business_name,contact_name,contact_email\nA,Ann,bad@\n")
    bearer, _ = auth.issue_api_token(principal)
    response = httpx.get(api_url + error_report_path(done.id), headers={"Authorization": f"Bearer {bearer}"})
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["row", "column", "value", "reason"] and rows[1][:3] == ["2", "contact_email", "bad@"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", "import-csv", *args], cwd=ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=120)


def test_cli_imports_into_the_demo_organisation(tmp_path):
    seed_demo()
    path = tmp_path / "example.csv"
    path.write_text(SEED_EXAMPLE.replace("jane@beta.com", "jane@") + '"Acme Corp","Dup","JOHN@acme.com",,,,,\n')
    result = _cli("--tenant", DEMO_SLUG, str(path), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "Finished" in result.stdout and "1 added" in result.stdout and "1 skipped" in result.stdout
    assert "1 with errors" in result.stdout
    report = result.stdout.split("Error report: ")[1].strip()
    assert "not a valid email address" in open(report).read()
    from app.services import tenants
    from app.services.scope import Scope
    from models.db import session_scope

    with session_scope() as s:
        scope = Scope.system(tenants.get_by_slug(s, DEMO_SLUG).id)
    assert contacts.search_contacts(scope, ContactQuery(q="john@acme.com")).items[0].business_name == "Acme Corp"


@pytest.mark.parametrize("content, reason", [(b"", "The file is empty"), (b"PK\x03\x04" + bytes(300), "Excel workbook")])
def test_cli_refuses_a_file_with_a_one_line_reason(tmp_path, content, reason):
    seed_demo()
    path = tmp_path / "in.csv"
    path.write_bytes(content)
    result = _cli("--tenant", DEMO_SLUG, str(path))
    assert result.returncode == 1 and result.stderr.strip().startswith("Refused:") and reason in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_refuses_an_unknown_organisation(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text(SEED_EXAMPLE)
    result = _cli("--tenant", "no-such-org", str(path))
    assert result.returncode == 1 and "No organisation has the slug “no-such-org”" in result.stderr


def test_cli_refuses_a_missing_file():
    result = _cli("--tenant", DEMO_SLUG, "/nonexistent/file.csv")
    assert result.returncode == 1 and "is not a file" in result.stderr
