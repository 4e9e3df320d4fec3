"""CSV import and export as a new admin uses them: the seed's example, a file with bad rows, a round trip."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from playwright.sync_api import expect
from sqlmodel import select

from models import Contact
from models.db import session_scope
from tests.conftest import PASSWORD

SEED_EXAMPLE = (
    "business_name,contact_name,contact_email,phone,city,state,status,notes\n"
    '"Acme Corp","John Smith","john@acme.com","+1-555-123-4567","New York","NY","lead","Enterprise prospect"\n'
    '"Beta Inc","Jane Doe","jane@beta.com","+1-555-987-6543","Los Angeles","CA","prospect","Follow up in 2 weeks"\n'
)
BAD_ROWS = (
    "Company,Name,E-mail,Status\n"
    "Gamma Dental,Gus Ray,gus@gamma.example,lead\n"
    "Delta Smiles,Dee Lane,dee@,lead\n"
    "Epsilon Ortho,Eve Moss,eve@epsilon.example,hot\n"
    ",No Company,nc@example.com,lead\n"
)


def upload(ui, tmp_path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    ui.page.locator("[data-testid=csv-dropzone] input[type=file]").set_input_files(str(path))
    ui.page.get_by_test_id("mapping-table").wait_for()


def import_and_wait(ui) -> None:
    ui.page.click("[data-testid=start-import]")
    ui.page.get_by_role("heading", name="Import finished").wait_for(timeout=60_000)


def snapshot(tenant_id) -> list[tuple]:
    with session_scope() as s:
        rows = s.exec(select(Contact).where(Contact.tenant_id == tenant_id).order_by(Contact.business_name)).all()
        return [
            (r.business_name, r.contact_name, r.contact_email, r.phone, r.city, r.state, r.status, r.notes)
            for r in rows
        ]


def test_admin_imports_fixes_and_round_trips_contacts(ui, make_org, tmp_path):
    owner = make_org("Harbor Clinic", email="owner@harbor.example")
    page = ui.page
    ui.sign_in("owner@harbor.example", PASSWORD)

    # The seed's two-row example: preview, automatic mapping, import.
    ui.open("/crm/import")
    page.get_by_text("Drop a CSV file here").wait_for()
    ui.shot("csv-import-upload")
    upload(ui, tmp_path, "example.csv", SEED_EXAMPLE)
    page.get_by_test_id("preview").get_by_text("Acme Corp").wait_for()
    targets = page.get_by_test_id("column-target")
    expect(targets).to_have_count(8)
    expect(targets.nth(2)).to_have_text("Email")
    ui.shot("csv-import-mapping")
    import_and_wait(ui)
    counts = page.get_by_test_id("import-counts")
    counts.get_by_text("Added").wait_for()
    expect(counts).to_contain_text("2")
    ui.shot("csv-import-finished")
    ui.open("/crm/contacts")
    page.get_by_test_id("contact-card").filter(has_text="Acme Corp").wait_for()
    page.get_by_test_id("contact-card").filter(has_text="Beta Inc").wait_for()

    # A file with bad rows: the good row goes in, the others are explained and downloadable.
    ui.open("/crm/import")
    upload(ui, tmp_path, "bad.csv", BAD_ROWS)
    expect(targets).to_have_text(["Business name", "Contact name", "Email", "Status"])
    import_and_wait(ui)
    errors = page.get_by_test_id("import-errors")
    errors.get_by_text("is not a valid email address").wait_for()
    errors.get_by_text("Unknown status “hot”").wait_for()
    errors.get_by_text("Business name is required for a new contact.").wait_for()
    ui.shot("csv-import-errors")
    with page.expect_download() as info:
        page.click("[data-testid=download-errors]")
    report = list(csv.reader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8-sig"))))
    assert report[0] == ["row", "column", "value", "reason"]
    assert [r[0] for r in report[1:]] == ["3", "4", "5"]

    # Export everything, then import the export again: nothing changes.
    before = snapshot(owner.tenant_id)
    assert len(before) == 3
    ui.open("/crm/contacts")
    with page.expect_download() as info:
        page.click("[data-testid=export-contacts]")
    exported = Path(info.value.path()).read_text(encoding="utf-8-sig")
    assert len(list(csv.reader(io.StringIO(exported)))) == 4
    ui.open("/crm/import")
    upload(ui, tmp_path, "contacts.csv", exported)
    page.get_by_test_id("mode-update").click()
    import_and_wait(ui)
    expect(page.get_by_test_id("import-counts")).to_contain_text("0")
    assert snapshot(owner.tenant_id) == before
    page.get_by_text("Recent imports").wait_for()
    ui.shot("csv-import-history")


def test_a_file_that_is_not_csv_is_refused_with_a_reason(ui, make_org, tmp_path):
    make_org("Harbor Clinic", email="owner@harbor.example")
    ui.sign_in("owner@harbor.example", PASSWORD)
    ui.open("/crm/import")
    path = tmp_path / "workbook.csv"
    path.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 8)
    ui.page.locator("[data-testid=csv-dropzone] input[type=file]").set_input_files(str(path))
    ui.page.get_by_test_id("upload-error").get_by_text("Excel workbook").wait_for()
    ui.shot("csv-import-refused")
