"""CSV import and export on real PostgreSQL: sniffing, mapping, duplicates, per-row errors, resume, round trip."""

from __future__ import annotations

import csv
import io
import tracemalloc
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, text
from sqlmodel import select

from app.services.crm import contact_search, contacts, custom_fields, interactions
from app.services.crm.contact_search import ContactQuery
from app.services.errors import NotFound, PermissionDenied, ValidationFailed
from app.services.imports import csv_export, csv_files, csv_import
from app.services.imports import csv_mapping as cm
from app.services.imports.csv_files import ImportRefused
from models import Contact, ImportJob
from models.db import session_scope

SEED_EXAMPLE = (
    "business_name,contact_name,contact_email,phone,city,state,status,notes\n"
    '"Acme Corp","John Smith","john@acme.com","+1-555-123-4567","New York","NY","lead","Enterprise prospect"\n'
    '"Beta Inc","Jane Doe","jane@beta.com","+1-555-987-6543","Los Angeles","CA","prospect","Follow up in 2 weeks"\n'
)


@pytest.fixture
def admin(make_org):
    return make_org("Harbor Dental").scope


def upload(scope, content: bytes | str, name: str = "contacts.csv") -> csv_import.ImportView:
    path = csv_files.store(scope.tenant_id, [content.encode() if isinstance(content, str) else content])
    return csv_import.register_upload(scope, name, path)


def run_import(scope, content, *, mapping=None, duplicates="skip", keep=True, batch_rows=1000, **kw):
    view = upload(scope, content)
    csv_import.start(
        scope,
        view.id,
        mapping or view.mapping,
        {"duplicates": duplicates, "keep_existing_when_empty": keep},
        enqueue=False,
    )
    return csv_import.execute(view.id, batch_rows=batch_rows, **kw)


def snapshot(scope) -> list[tuple]:
    with session_scope() as s:
        rows = s.exec(select(Contact).where(Contact.tenant_id == scope.tenant_id).order_by(Contact.business_name)).all()
        return [
            (
                r.business_name,
                r.contact_name,
                r.contact_email,
                r.phone,
                r.city,
                r.state,
                r.status,
                r.notes,
                r.website,
                r.custom_fields,
                r.updated_at,
            )
            for r in rows
        ]


def errors_of(scope, view) -> list[tuple]:
    rows, _ = csv_import.row_errors(scope, view.id, limit=1000)
    return [(e.row, e.column, e.reason) for e in rows]


# --- the seed's example ------------------------------------------------------------------------------------


def test_the_seed_example_imports_both_contacts(admin):
    view = upload(admin, SEED_EXAMPLE)
    assert (view.delimiter, view.has_header, view.encoding) == (",", True, "utf-8-sig")
    assert view.mapping == [
        "business_name",
        "contact_name",
        "contact_email",
        "phone",
        "city",
        "state",
        "status",
        "notes",
    ]
    assert view.preview[0][:2] == ["Acme Corp", "John Smith"]
    done = run_import(admin, SEED_EXAMPLE)
    assert (done.status, done.rows_read, done.created, done.failed, done.percent) == ("done", 2, 2, 0, 100)
    page = contact_search.search_contacts(admin, ContactQuery(sort="name"))
    assert [(c.business_name, c.status, c.phone) for c in page.items] == [
        ("Acme Corp", "lead", "+1-555-123-4567"),
        ("Beta Inc", "prospect", "+1-555-987-6543"),
    ]
    with session_scope() as s:
        assert (
            s.exec(select(Contact.phone_normalized).where(Contact.contact_email == "john@acme.com")).one()
            == "+15551234567"
        )


# --- sniffing hostile files --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, encoding, delimiter",
    [
        (SEED_EXAMPLE.encode("utf-8-sig"), "utf-8-sig", ","),
        (SEED_EXAMPLE.replace("John Smith", "Jöhn Smïth").encode("utf-8"), "utf-8-sig", ","),
        (SEED_EXAMPLE.replace("John Smith", "Jöhn Smïth").encode("latin-1"), "cp1252", ","),
        (SEED_EXAMPLE.replace(",", ";").encode(), "utf-8-sig", ";"),
        (SEED_EXAMPLE.replace(",", "\t").replace('"', "").encode("utf-16"), "utf-16", "\t"),
    ],
)
def test_encodings_and_delimiters_are_detected(admin, content, encoding, delimiter):
    done = run_import(admin, content)
    assert (done.encoding, done.delimiter, done.created, done.failed) == (encoding, delimiter, 2, 0)
    names = {c.contact_name for c in contact_search.search_contacts(admin, ContactQuery()).items}
    assert names & {"John Smith", "Jöhn Smïth"}


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "The file is empty"),
        (b"\n\n  \n", "The file is empty"),
        (b"business_name,contact_name,contact_email\n", "header row but no data rows"),
        (b"PK\x03\x04" + bytes(range(256)) * 4, "Excel workbook"),
        (bytes(range(256)) * 40, "binary data"),
        (b"%PDF-1.7\n" + bytes(200), "PDF"),
    ],
)
def test_files_that_are_not_csv_are_refused_with_a_reason(admin, content, message):
    with pytest.raises(ImportRefused, match=message):
        upload(admin, content)
    with session_scope() as s:
        assert s.exec(select(func.count()).select_from(ImportJob)).one() == 0
    assert list(csv_files.import_dir(admin.tenant_id).iterdir()) == []  # the refused file is deleted


def test_a_file_of_500000_columns_is_refused_without_reading_its_rows_into_memory(admin):
    header = ",".join(f"column{i}" for i in range(500_000))
    row = ",".join(f"v{i}" for i in range(500_000))
    content = f"{header}\n{row}\n".encode()
    assert len(content) > 5_000_000
    tracemalloc.start()
    try:
        with pytest.raises(ImportRefused, match="more than 500 columns; at most 500 can be imported"):
            upload(admin, content)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Sniffing read the first 64 KB of its header, never its 500,000 cells (110 MB before the limit).
    assert peak < 8 * 1024 * 1024, f"sniffing allocated {peak / 1e6:.1f} MB"
    assert list(csv_files.import_dir(admin.tenant_id).iterdir()) == []
    with session_scope() as s:
        assert s.exec(select(func.count()).select_from(ImportJob)).one() == 0


def test_the_column_limit_is_500(admin):
    def file_of(width: int) -> str:
        return ",".join(f"Field {i}" for i in range(width)) + "\n" + ",".join("x" for _ in range(width)) + "\n"

    assert len(upload(admin, file_of(500)).headers) == 500
    with pytest.raises(ImportRefused, match="This file has 501 columns; at most 500"):
        upload(admin, file_of(501))
    with pytest.raises(ImportRefused, match="has 501 columns"):  # without a header, as wide as its rows
        upload(admin, ("1," * 500 + "1\n") * 2)


def test_a_header_over_64_kb_is_refused(admin):
    header = ",".join(f"Column {i} " + "n" * 7000 for i in range(10))  # 10 columns, 70 KB
    with pytest.raises(ImportRefused, match="first row of this file is longer than 64 KB"):
        upload(admin, f"{header}\nAcme,Ann Lee\n")


def test_a_row_too_wide_to_preview_is_left_to_the_import(admin):
    """A data row too wide to preview ends the preview, not the upload; the import fails that row only."""
    wide = ",".join(["Wide Co", "Wide Person", "wide@x.example"] + ["extra"] * 5000)
    content = (
        f"business_name,contact_name,contact_email\nAcme,Ann Lee,ann@acme.example\n{wide}\nBeta,Bo Ray,bo@x.example\n"
    )
    view = upload(admin, content)
    assert view.preview == [["Acme", "Ann Lee", "ann@acme.example"]]
    done = run_import(admin, content)
    assert (done.status, done.created, done.failed) == ("done", 2, 1)


def test_long_values_are_cut_in_the_preview(admin):
    view = upload(admin, f"business_name,contact_name,notes\nAcme,Ann Lee,{'n' * 5000}\n")
    assert view.preview[0][2] == "n" * csv_files.PREVIEW_CELL_CHARS + "…"


def test_quoted_newlines_quotes_ragged_rows_and_duplicate_headers(admin):
    content = (
        "Company,Name,Email,Email,Notes\n"
        '"Quote ""Co""","Ann Lee","ann@q.example","second@q.example","line one\nline two"\n'
        '"Short Row","Bo Ray"\n'
        '"Too Long","Cy Ng","cy@q.example","","x","unexpected"\n'
        '"Trailing Empty","Di Fox","di@q.example","","",""\n'
    )
    view = upload(admin, content)
    assert view.headers == ["Company", "Name", "Email", "Email (2)", "Notes"]
    assert view.mapping == ["business_name", "contact_name", "contact_email", "skip", "notes"]
    done = run_import(admin, content)
    assert (done.created, done.failed) == (3, 1)
    assert errors_of(admin, done) == [
        (4, "", "This row has 6 cells but the header has 5. A delimiter inside a value needs quotes around that value.")
    ]
    with session_scope() as s:
        row = s.exec(select(Contact).where(Contact.contact_name == "Ann Lee")).one()
        assert (row.business_name, row.notes) == ('Quote "Co"', "line one\nline two")


def test_backslashes_tabs_and_line_breaks_arrive_as_they_were(admin):
    custom_fields.create_field(admin, label="Plan", field_type="select", choices='Gold "Plus", Silver')
    content = (
        "business_name,contact_name,notes,plan\n"
        '"C:\\new\\folder","Tab\tName","one\r\ntwo \\N three","gold ""plus"""\n'
        '"Plain Co","Ann Lee","\\N","silver"\n'
    )
    done = run_import(admin, content, mapping=["business_name", "contact_name", "notes", "cf:plan"])
    assert (done.created, done.failed) == (2, 0), errors_of(admin, done)
    with session_scope() as s:
        rows = s.exec(select(Contact).where(Contact.tenant_id == admin.tenant_id).order_by(Contact.business_name)).all()
    assert [(r.business_name, r.contact_name, r.notes, r.custom_fields) for r in rows] == [
        ("C:\\new\\folder", "Tab\tName", "one\r\ntwo \\N three", {"plan": 'Gold "Plus"'}),
        ("Plain Co", "Ann Lee", "\\N", {"plan": "Silver"}),
    ]


def test_a_one_megabyte_field_fails_its_row_only(admin):
    content = SEED_EXAMPLE + f'"Huge Co","Hugh Mann","hugh@huge.example","","","","","{"n" * 1_048_576}"\n'
    done = run_import(admin, content)
    assert (done.created, done.failed) == (2, 1)
    assert errors_of(admin, done) == [(4, "notes", "Notes is at most 10000 characters (got 1048576).")]


def test_broken_quoting_is_refused_early_or_stops_the_import_where_it_is(admin):
    broken = '"Never closed,P,x@x.example\n' + "x" * (csv_files.MAX_FIELD_CHARS + 10)
    with pytest.raises(ImportRefused, match="Check that quotes are balanced"):
        upload(admin, SEED_EXAMPLE + broken)  # within the preview: nothing is imported
    good = "".join(f"Biz {i},P {i},p{i}@x.example,,,,,\n" for i in range(20))
    done = run_import(admin, SEED_EXAMPLE + good + broken)
    assert done.status == "failed" and "Stopped after row 23" in done.error and "quoting is broken" in done.error
    assert done.created == 22 and contact_search.search_contacts(admin, ContactQuery()).total == 22


def test_formula_cells_are_stored_as_text_and_exported_neutralised(admin):
    content = (
        "business_name,contact_name,notes\n"
        '"=HYPERLINK(""http://evil.example"",""click"")","@SUM(A1)","+cmd|\' /C calc\'!A0"\n'
    )
    done = run_import(admin, content)
    assert done.created == 1
    with session_scope() as s:
        row = s.exec(select(Contact).where(Contact.tenant_id == admin.tenant_id)).one()
        assert row.business_name.startswith("=HYPERLINK(") and row.contact_name == "@SUM(A1)"
    exported = "".join(csv_export.export_contacts(admin, ContactQuery()))
    cells = list(csv.reader(io.StringIO(exported)))[1]
    assert cells[1].startswith("'=HYPERLINK(") and cells[2] == "'@SUM(A1)" and cells[11].startswith("'+cmd")
    assert all(line.startswith('"') for line in exported.splitlines())  # every field quoted


# --- validation and duplicates -----------------------------------------------------------------------------


def test_bad_rows_get_per_row_errors_and_good_rows_import(admin):
    content = (
        "business_name,contact_name,contact_email,phone,status\n"
        "Good One,Ann,ann@ok.example,555-201-0001,lead\n"
        "Bad Email,Bob,bob@,555-201-0002,lead\n"
        "Bad Phone,Cy,cy@ok.example,call me,lead\n"
        "Bad Status,Di,di@ok.example,,vip\n"
        ",No Business,nb@ok.example,,\n"
        "Good Two,Ed,ed@ok.example,,Closed Won\n"
    )
    done = run_import(admin, content)
    assert (done.created, done.failed, done.rows_read) == (2, 4, 6)
    reasons = errors_of(admin, done)
    assert [r[0] for r in reasons] == [3, 4, 5, 6]
    assert "not a valid email" in reasons[0][2] and "not a phone number" in reasons[1][2]
    assert "Unknown status “vip”" in reasons[2][2] and "Business name is required" in reasons[3][2]
    statuses = {c.contact_name: c.status for c in contact_search.search_contacts(admin, ContactQuery()).items}
    assert statuses == {"Ann": "lead", "Ed": "closed_won"}


def test_duplicates_inside_the_file_keep_the_first(admin):
    rows = ["business_name,contact_name,contact_email"] + [f"Biz {i},P {i},p{i % 90}@dup.example" for i in range(100)]
    done = run_import(admin, "\n".join(rows) + "\n", batch_rows=30)
    assert (done.created, done.skipped, done.failed) == (90, 10, 0)
    first = errors_of(admin, done)[0]
    assert first == (92, "", "Same contact as row 2 of this file; the first one was used.")
    assert contact_search.search_contacts(admin, ContactQuery(q="p5@dup.example")).items[0].business_name == "Biz 5"


@pytest.fixture
def existing(admin):
    return contacts.create_contact(
        admin,
        {
            "business_name": "Acme Corp",
            "contact_name": "John Smith",
            "contact_email": "JOHN@acme.com",
            "city": "Boston",
            "notes": "VIP",
            "status": "customer",
        },
    )


def test_skip_mode_leaves_existing_contacts_alone(admin, existing):
    done = run_import(admin, SEED_EXAMPLE, duplicates="skip")
    assert (done.created, done.skipped, done.updated) == (1, 1, 0)
    assert contacts.get_contact(admin, existing.card.id).card.city == "Boston"


def test_create_only_mode_reports_existing_contacts_as_errors(admin, existing):
    done = run_import(admin, SEED_EXAMPLE, duplicates="create_only")
    assert (done.created, done.failed) == (1, 1)
    assert errors_of(admin, done) == [
        (2, "", "John Smith already has this email; only new contacts are added in this import.")
    ]


def test_update_mode_updates_and_records_status_changes(admin, existing):
    done = run_import(admin, SEED_EXAMPLE, duplicates="update")
    assert (done.created, done.updated) == (1, 1)
    detail = contacts.get_contact(admin, existing.card.id)
    assert (detail.card.city, detail.card.status, detail.notes) == ("New York", "lead", "Enterprise prospect")
    entry = interactions.timeline(admin, existing.card.id)[0]
    assert entry.subject == "Status changed from Customer to Lead" and entry.meta["source"] == "csv_import"
    assert "row 2" in entry.content


def test_keep_existing_values_when_the_cell_is_empty(admin, existing):
    content = "business_name,contact_name,contact_email,city,notes\nAcme Corp,John Smith,john@acme.com,,\n"
    run_import(admin, content, duplicates="update", keep=True)
    assert (
        contacts.get_contact(admin, existing.card.id).card.city,
        contacts.get_contact(admin, existing.card.id).notes,
    ) == ("Boston", "VIP")
    run_import(admin, content, duplicates="update", keep=False)
    detail = contacts.get_contact(admin, existing.card.id)
    assert (detail.card.city, detail.notes, detail.card.business_name) == ("", "", "Acme Corp")


def test_custom_fields_are_mapped_validated_and_merged(admin, existing):
    custom_fields.create_field(admin, label="Insurance plan", field_type="select", choices="Delta, Cigna")
    custom_fields.create_field(admin, label="Chairs", field_type="number")
    content = (
        "Company,Name,E-mail,Insurance Plan,Chairs\n"
        "Acme Corp,John Smith,john@acme.com,cigna,12\n"
        "Beta Inc,Jane Doe,jane@beta.com,Kaiser,3\n"
        "Gamma LLC,Gus Ray,gus@gamma.example,,seven\n"
    )
    view = upload(admin, content)
    assert view.mapping == ["business_name", "contact_name", "contact_email", "cf:insurance_plan", "cf:chairs"]
    done = run_import(admin, content, duplicates="update")
    assert (done.updated, done.created, done.failed) == (1, 0, 2)
    assert contacts.get_contact(admin, existing.card.id).custom_fields == {"insurance_plan": "Cigna", "chairs": 12}
    assert [r[2] for r in errors_of(admin, done)] == [
        "Insurance plan must be one of: Delta, Cigna.",
        "Chairs must be a number (got “seven”).",
    ]


def test_first_and_last_name_columns_make_the_contact_name(admin):
    done = run_import(
        admin, "Organization,First Name,Last Name,Email Address\nOrbit Co,Ada,Lovelace,ada@orbit.example\n"
    )
    assert done.created == 1
    assert contact_search.search_contacts(admin, ContactQuery()).items[0].contact_name == "Ada Lovelace"


def test_mapping_is_checked_before_anything_runs(admin):
    view = upload(admin, SEED_EXAMPLE)
    bad = [
        (["business_name", "business_name"] + view.mapping[2:], "both mapped to Business name"),
        (["skip"] * len(view.mapping), "Map at least one column"),
        (["skip", "contact_name"] + view.mapping[2:], "Map a column to Business name"),
        (["business_name", "favourite_colour"] + view.mapping[2:], "unknown field"),
    ]
    for mapping, message in bad:
        with pytest.raises(ValidationFailed, match=message):
            csv_import.start(admin, view.id, mapping, {"duplicates": "skip"}, enqueue=False)
    with pytest.raises(ValidationFailed, match="Choose what happens"):
        csv_import.start(admin, view.id, view.mapping, {"duplicates": "merge"}, enqueue=False)
    assert csv_import.import_view(admin, view.id).status == "uploaded"


def test_saved_mappings_apply_to_the_next_file(admin):
    content = "Practice,Who,Where\nBayview,Priya,San Diego\n"
    view = upload(admin, content)
    assert view.mapping == ["business_name", "skip", "skip"]
    mapping = ["business_name", "contact_name", "city"]
    csv_import.start(admin, view.id, mapping, {"duplicates": "skip"}, save_as="Front desk export", enqueue=False)
    saved = cm.saved_mappings(admin)
    assert [s.name for s in saved] == ["Front desk export"]
    assert cm.apply_saved(saved[0], ["Who", "Practice", "Where", "Extra"], []) == [
        "contact_name",
        "business_name",
        "city",
        "skip",
    ]


# --- jobs: resume, cancel, isolation -------------------------------------------------------------------------


def test_an_interrupted_import_resumes_without_duplicates(admin):
    rows = ["business_name,contact_name,contact_email"] + [f"Biz {i},P {i},p{i}@resume.example" for i in range(250)]
    rows.insert(100, "Broken,,bad@")  # one failing row, so counts are checked across the resume
    view = upload(admin, "\n".join(rows) + "\n")
    csv_import.start(admin, view.id, view.mapping, {"duplicates": "skip"}, enqueue=False)

    class Crash(Exception):
        pass

    def crash_after_two_batches(totals):
        if totals.rows_read >= 100:
            raise Crash()

    with pytest.raises(Crash):
        csv_import.execute(view.id, batch_rows=50, on_progress=crash_after_two_batches)
    half = csv_import.import_view(admin, view.id)
    assert (half.status, half.rows_read, half.created, half.failed) == ("running", 100, 99, 1)
    done = csv_import.execute(view.id, batch_rows=50)
    assert (done.status, done.rows_read, done.created, done.failed) == ("done", 251, 250, 1)
    with session_scope() as s:
        assert s.execute(text("SELECT count(DISTINCT email_normalized), count(*) FROM contacts")).one() == (250, 250)
    assert len(errors_of(admin, done)) == 1


def test_a_contact_added_while_an_import_runs_is_not_duplicated(admin, caplog):
    """An organisation without contacts is imported without looking rows up; a contact someone adds meanwhile
    makes its batch fail on the unique key, and the batch is redone with a lookup."""
    rows = ["business_name,contact_name,contact_email"] + [f"Biz {i},P {i},p{i}@race.example" for i in range(300)]

    def someone_adds_a_contact(totals):
        if totals.rows_read == 50:
            contacts.create_contact(
                admin, {"business_name": "Walk-in", "contact_name": "Wes", "contact_email": "P250@race.example"}
            )

    with caplog.at_level("INFO", logger="app.services.imports.csv_loader"):
        done = run_import(admin, "\n".join(rows) + "\n", batch_rows=50, on_progress=someone_adds_a_contact)
    assert "raced another writer" in caplog.text  # the batch with that email was redone
    assert (done.status, done.rows_read, done.created, done.skipped) == ("done", 300, 299, 1)
    with session_scope() as s:
        assert s.execute(text("SELECT count(*), count(DISTINCT email_normalized) FROM contacts")).one() == (300, 300)
        assert (
            s.exec(select(Contact.business_name).where(Contact.email_normalized == "p250@race.example")).one()
            == "Walk-in"
        )


def test_a_runner_that_lost_its_job_cannot_commit_its_batch(admin, monkeypatch, caplog):
    """Runner 1 stalls in the middle of a batch (waiting on a contact someone is adding) and stops heart-beating;
    runner 2 takes the job over and resumes from the checkpoint. When runner 1 moves again its batch rolls back:
    the checkpoint is fenced on the runner holding the job and on the counts the batch started from."""
    import asyncio
    import threading
    import time

    import psycopg

    from app.jobs.runner import Runner
    from app.services.imports import csv_loader
    from models.db import libpq_url

    monkeypatch.setattr(csv_loader, "BATCH_ROWS", 50)
    # Every fourth row has no email: nothing but the checkpoint would stop it being imported twice.
    rows = [f"Biz {i},P {i},{'' if i % 4 == 3 else f'p{i}@fence.example'}" for i in range(400)]
    view = upload(admin, "business_name,contact_name,contact_email\n" + "\n".join(rows) + "\n")
    job_id = csv_import.start(admin, view.id, view.mapping, {"duplicates": "skip"}).job_id

    def one(sql: str):
        with session_scope() as s:
            return s.execute(text(sql), {"job": job_id, "id": view.id}).scalar()

    def until(sql: str, what: str) -> None:
        deadline = time.monotonic() + 60
        while not one(sql):
            assert time.monotonic() < deadline, f"never happened: {what}"
            time.sleep(0.05)

    # Someone adds a contact whose email is in the file's third batch, and has not committed yet.
    someone = psycopg.connect(libpq_url())
    someone.execute(
        "INSERT INTO contacts (id, tenant_id, business_name, contact_name, contact_email, email_normalized, "
        "status) VALUES (gen_random_uuid(), %s, 'Walk-in', 'Wes', 'p120@fence.example', "
        "'p120@fence.example', 'closed_lost')",
        (admin.tenant_id,),
    )
    stalled = Runner(worker_id="runner-1", concurrency=1, heartbeat_seconds=3600, poll_seconds=0.1, schedule=False)
    taker = Runner(
        worker_id="runner-2", concurrency=1, lease_seconds=0.5, heartbeat_seconds=0.1, poll_seconds=0.1, schedule=False
    )
    threads = [
        threading.Thread(target=lambda r=r: asyncio.run(r.run_until_idle(timeout=120))) for r in (stalled, taker)
    ]
    caplog.set_level("INFO", logger="app.jobs.runner")
    try:
        threads[0].start()
        until("SELECT rows_read = 100 FROM import_jobs WHERE id = :id", "runner 1 committed two batches")
        until(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            "runner 1 waits in its third batch",
        )
        until(
            "SELECT heartbeat_at < now() - interval '0.6 seconds' FROM jobs WHERE id = :job", "runner 1's lease ran out"
        )
        threads[1].start()
        until("SELECT locked_by = 'runner-2' FROM jobs WHERE id = :job", "runner 2 took the job over")
    finally:
        someone.rollback()  # runner 1 moves again, into its checkpoint
        someone.close()
        for thread in threads:
            if thread.is_alive() or thread.ident:
                thread.join(timeout=120)
    done = csv_import.import_view(admin, view.id)
    assert (done.status, done.rows_read, done.created, done.skipped, done.failed) == ("done", 400, 400, 0, 0)
    assert errors_of(admin, done) == []
    with session_scope() as s:
        assert s.execute(text("SELECT count(*), count(DISTINCT business_name) FROM contacts")).one() == (400, 400)
        job = s.execute(text("SELECT status, attempts, locked_by FROM jobs WHERE id = :id"), {"id": job_id}).one()
    assert tuple(job) == ("succeeded", 2, None)
    stopped = [r for r in caplog.records if r.getMessage() == "job stopped"]
    assert [r.reason for r in stopped] == [
        "Another runner has taken over this import; this runner's batch was rolled back."
    ]


def test_an_import_whose_job_keeps_failing_is_marked_failed(admin, monkeypatch):
    import asyncio

    from app.jobs.runner import Runner

    def broken(import_id, **kwargs):
        raise RuntimeError("the database went away")

    view = upload(admin, SEED_EXAMPLE)
    csv_import.start(admin, view.id, view.mapping, {"duplicates": "skip"})
    monkeypatch.setattr(csv_import, "execute", broken)

    async def run():
        runner = Runner(schedule=False, poll_seconds=0.05, retry_base_seconds=0.01)
        for _ in range(200):
            await runner.run_until_idle(timeout=30)
            if csv_import.import_view(admin, view.id).status == "failed":
                return
            await asyncio.sleep(0.05)

    asyncio.run(run())
    failed = csv_import.import_view(admin, view.id)
    assert failed.status == "failed"
    assert failed.error == (
        "The import stopped on an internal error and gave up after 5 attempts. Rows imported before that are kept."
    )


def test_import_runs_as_a_job_with_progress(admin):
    import asyncio

    from app.jobs.runner import Runner
    from app.services import job_queue

    view = upload(admin, SEED_EXAMPLE)
    started = csv_import.start(admin, view.id, view.mapping, {"duplicates": "skip"})
    assert started.status == "queued" and started.job_id
    asyncio.run(Runner(schedule=False).run_until_idle(timeout=60))
    done = csv_import.import_view(admin, view.id)
    assert (done.status, done.created) == ("done", 2)
    job = job_queue.get_job(admin, started.job_id)
    assert job.status == "succeeded" and job.result["created"] == 2


def test_other_organisations_and_members_cannot_see_an_import(admin, make_org, make_user):
    view = upload(admin, SEED_EXAMPLE)
    other = make_org("Other").scope
    member = make_user(admin.tenant_id).scope
    for call in (
        lambda s: csv_import.import_view(s, view.id),
        lambda s: csv_import.row_errors(s, view.id),
        lambda s: csv_import.error_report(s, view.id),
        lambda s: csv_import.cancel(s, view.id),
        lambda s: csv_import.start(s, view.id, view.mapping, {}, enqueue=False),
    ):
        with pytest.raises(NotFound):
            call(other)
        with pytest.raises(PermissionDenied):
            call(member)
    assert csv_import.list_imports(other) == []


def test_error_report_csv(admin):
    done = run_import(admin, "business_name,contact_name,contact_email\nA,Ann,bad@\n,Bob,bob@x.example\n")
    name, chunks = csv_import.error_report(admin, done.id)
    rows = list(csv.reader(io.StringIO("".join(chunks))))
    assert name == "contacts-errors.csv"
    assert rows[0] == ["row", "column", "value", "reason"]
    assert rows[1][:3] == ["2", "contact_email", "bad@"] and rows[2][0] == "3"


# --- export ------------------------------------------------------------------------------------------------


def test_export_follows_the_filter_and_re_imports_without_changes(admin):
    custom_fields.create_field(admin, label="Tier", field_type="select", choices="Gold, Silver")
    custom_fields.create_field(admin, label="Seats", field_type="number")
    custom_fields.create_field(admin, label="Renews", field_type="boolean")
    for i, (status, email) in enumerate([("lead", "a@x.example"), ("customer", "b@x.example"), ("customer", None)]):
        contacts.create_contact(
            admin,
            {
                "business_name": f"Biz {i}",
                "contact_name": f"Person {i}",
                "contact_email": email,
                "phone": "+44 20 7946 0958",
                "status": status,
                "notes": 'Line 1\nLine "2"',
                "website": "biz.example",
                "custom_fields": {"tier": "Gold", "seats": 2 + i, "renews": i % 2 == 0},
            },
        )
    customers = "".join(csv_export.export_contacts(admin, ContactQuery(status="customer")))
    assert len(list(csv.reader(io.StringIO(customers)))) == 3
    everything = "".join(csv_export.export_contacts(admin, ContactQuery()))
    before = snapshot(admin)
    for mode in ("skip", "update"):
        done = run_import(admin, everything, duplicates=mode)
        assert (done.created, done.failed) == (0, 0), errors_of(admin, done)
    after = snapshot(admin)
    assert [r[:-1] for r in after] == [r[:-1] for r in before]  # only updated_at moved


def test_statistics_count_imported_contacts(admin):
    from tests.test_crm import stats_match_contacts

    run_import(admin, SEED_EXAMPLE)
    run_import(admin, SEED_EXAMPLE.replace("lead", "customer"), duplicates="update")
    assert stats_match_contacts()


def test_housekeeping_removes_old_upload_files(admin):
    done = run_import(admin, SEED_EXAMPLE)
    waiting = upload(admin, SEED_EXAMPLE)
    with session_scope() as s:
        paths = {str(r.id): Path(r.stored_path) for r in s.exec(select(ImportJob)).all()}
        s.execute(
            text("UPDATE import_jobs SET finished_at = now() - interval '8 days' WHERE id = :id"), {"id": done.id}
        )
    assert csv_import.purge_files(abandoned_for=timedelta(0)) == 2
    assert not paths[done.id].exists() and not paths[waiting.id].exists()
    assert csv_import.import_view(admin, done.id).created == 2  # the import's record stays
    assert csv_import.purge_files() == 0


def test_a_nul_character_past_the_sniffed_start_is_dropped_and_the_row_imports(admin):
    rows = "".join(f"Co {i},Ann {i},note\n" for i in range(1000))
    done = run_import(admin, f"business_name,contact_name,notes\n{rows}Acme\x00 Co,Ada,hello\x00world\n")
    assert (done.created, done.failed) == (1001, 0), errors_of(admin, done)
    with session_scope() as s:
        notes = s.exec(
            select(Contact.notes).where(Contact.tenant_id == admin.tenant_id, Contact.business_name == "Acme Co")
        ).one()
    assert notes == "helloworld"
