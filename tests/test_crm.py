"""CRM services: contacts, search, statuses, custom fields, the timeline and the dashboard, on real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, text
from sqlmodel import select

from app.services.crm import contact_search, contacts, crm_dashboard, custom_fields, interactions
from app.services.crm.contact_search import ContactQuery
from app.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from models import Contact, ContactInteraction, CustomField
from models import crm as models_crm
from models.base import utcnow
from models.db import session_scope


def counts() -> tuple[int, int, int]:
    with session_scope() as s:
        return (
            s.exec(select(func.count()).select_from(Contact)).one(),
            s.exec(select(func.count()).select_from(ContactInteraction)).one(),
            s.exec(select(func.count()).select_from(CustomField)).one(),
        )


@pytest.fixture
def admin(make_org):
    return make_org("Harbor Dental").scope


@pytest.fixture
def other(make_org):
    return make_org("Lakeside Dental").scope


def new_contact(scope, **extra):
    data = {
        "business_name": "Bayview Orthodontics",
        "contact_name": "Priya Raman",
        "contact_email": "priya@bayview.example",
        "phone": "(555) 201-0134",
        "city": "San Diego",
        "state": "CA",
    }
    return contacts.create_contact(scope, {**data, **extra})


# --- contacts ----------------------------------------------------------------------------------------------


def test_create_normalises_and_reads_back(admin):
    detail = new_contact(admin, contact_email="  Priya@Bayview.EXAMPLE ", website="bayview.example")
    assert detail.card.status == "lead"
    assert detail.card.email == "Priya@Bayview.EXAMPLE"
    assert detail.website == "https://bayview.example"
    with session_scope() as s:
        row = s.get(Contact, detail.card.id)
        assert row.email_normalized == "priya@bayview.example"
        assert row.phone_normalized == "+15552010134"
    assert contacts.get_contact(admin, detail.card.id).card.business_name == "Bayview Orthodontics"


def test_duplicate_email_is_refused_whatever_its_case_and_spaces(admin):
    new_contact(admin)
    before = counts()
    with pytest.raises(Conflict, match="Priya Raman .Bayview Orthodontics. already uses priya@bayview.example"):
        new_contact(admin, contact_name="Someone Else", contact_email=" PRIYA@bayview.example")
    assert counts() == before


def test_same_email_in_another_organisation_is_fine(admin, other):
    new_contact(admin)
    new_contact(other)
    assert counts()[0] == 2


def test_editing_into_a_duplicate_email_is_refused(admin):
    new_contact(admin)
    second = new_contact(admin, contact_email="tom@lakeside.example", contact_name="Tom Becker")
    with pytest.raises(Conflict):
        contacts.update_contact(admin, second.card.id, {"contact_email": "PRIYA@bayview.example"}, partial=True)
    assert contacts.get_contact(admin, second.card.id).card.email == "tom@lakeside.example"


@pytest.mark.parametrize(
    "extra, field, message",
    [
        ({"contact_email": "priya@"}, "contact_email", "is not a valid email address"),
        ({"business_name": "  "}, "business_name", "Business name is required."),
        ({"contact_name": None}, "contact_name", "Contact name is required."),
        ({"status": "hot"}, "status", "Unknown status “hot”"),
        ({"business_name": "x" * 256}, "business_name", "Business name is at most 255 characters (got 256)."),
        ({"notes": "n" * 10_001}, "notes", "Notes is at most 10000 characters"),
        ({"phone": "call me"}, "phone", "is not a phone number"),
        ({"stripe_customer_id": "acme"}, "stripe_customer_id", "cus_"),
        ({"custom_fields": {"nope": 1}}, "custom_fields.nope", "There is no custom field “nope”"),
    ],
)
def test_bad_contact_input_names_the_problem_and_writes_nothing(admin, extra, field, message):
    before = counts()
    with pytest.raises(ValidationFailed) as info:
        new_contact(admin, **extra)
    assert message in info.value.fields[field]
    assert counts() == before


def test_several_problems_are_reported_together(admin):
    with pytest.raises(ValidationFailed) as info:
        contacts.create_contact(admin, {"contact_email": "bad", "status": "zzz"})
    assert set(info.value.fields) == {"business_name", "contact_name", "contact_email", "status"}


def test_status_change_leaves_a_timeline_entry_but_not_a_last_interaction(admin):
    contact = new_contact(admin)
    contacts.set_status(admin, contact.card.id, "qualified")
    entries = interactions.timeline(admin, contact.card.id)
    assert [e.subject for e in entries] == ["Status changed from Lead to Qualified"]
    assert entries[0].is_status_change and entries[0].meta == {
        "kind": "status_change",
        "from": "lead",
        "to": "qualified",
    }
    assert contacts.get_contact(admin, contact.card.id).card.last_interaction_at == ""
    contacts.update_contact(admin, contact.card.id, {"city": "La Jolla"}, partial=True)  # no status change: no entry
    assert len(interactions.timeline(admin, contact.card.id)) == 1


def test_delete_removes_the_contact_and_its_timeline(admin):
    contact = new_contact(admin)
    interactions.add_interaction(admin, contact.card.id, {"interaction_type": "note", "content": "Called back"})
    assert contacts.delete_contact(admin, contact.card.id) == "Priya Raman"
    assert counts()[:2] == (0, 0)
    with pytest.raises(NotFound):
        contacts.get_contact(admin, contact.card.id)


# --- tenant isolation and roles ----------------------------------------------------------------------------


def test_another_organisation_cannot_see_or_touch_a_contact(admin, other):
    contact = new_contact(admin)
    entry = interactions.add_interaction(admin, contact.card.id, {"interaction_type": "note", "content": "Private"})
    cid = contact.card.id
    for call in (
        lambda: contacts.get_contact(other, cid),
        lambda: contacts.update_contact(other, cid, {"city": "X"}, partial=True),
        lambda: contacts.set_status(other, cid, "customer"),
        lambda: contacts.delete_contact(other, cid),
        lambda: interactions.timeline(other, cid),
        lambda: interactions.add_interaction(other, cid, {"interaction_type": "note", "content": "x"}),
        lambda: interactions.update_interaction(other, entry.id, {"content": "changed"}),
        lambda: interactions.set_done(other, entry.id, True),
        lambda: interactions.delete_interaction(other, entry.id),
    ):
        with pytest.raises(NotFound):
            call()
    assert contact_search.search_contacts(other, ContactQuery()).total == 0
    assert contact_search.search_contacts(other, ContactQuery(q="Priya")).items == []
    assert interactions.recent_activity(other) == []
    assert interactions.timeline(admin, cid)[0].content == "Private"
    assert contacts.get_contact(admin, cid).card.status == "lead"


def test_an_entry_of_one_contact_cannot_be_changed_through_another(admin):
    first = new_contact(admin)
    second = new_contact(admin, contact_email="tom@lakeside.example")
    entry = interactions.add_interaction(admin, first.card.id, {"interaction_type": "note", "content": "Mine"})
    with pytest.raises(NotFound):
        interactions.delete_interaction(admin, entry.id, contact_id=second.card.id)
    assert len(interactions.timeline(admin, first.card.id)) == 1


def test_members_are_refused_by_every_crm_service(admin, make_user):
    member = make_user(admin.tenant_id).scope
    contact = new_contact(admin)
    calls = [
        lambda: contact_search.search_contacts(member, ContactQuery()),
        lambda: contacts.get_contact(member, contact.card.id),
        lambda: new_contact(member, contact_email="m@x.example"),
        lambda: contacts.update_contact(member, contact.card.id, {"city": "X"}, partial=True),
        lambda: contacts.delete_contact(member, contact.card.id),
        lambda: interactions.timeline(member, contact.card.id),
        lambda: interactions.add_interaction(member, contact.card.id, {"interaction_type": "note", "content": "x"}),
        lambda: interactions.recent_activity(member),
        lambda: interactions.upcoming_follow_ups(member),
        lambda: custom_fields.list_fields(member),
        lambda: custom_fields.create_field(member, label="Tier", field_type="text"),
        lambda: crm_dashboard.crm_dashboard(member),
    ]
    before = counts()
    for call in calls:
        with pytest.raises(PermissionDenied):
            call()
    assert counts() == before


# --- search, filters, sorting, pages ------------------------------------------------------------------------


@pytest.fixture
def book(admin):
    people = [
        ("Bayview Orthodontics", "Priya Raman", "priya@bayview.example", "+1 555 201 0134", "lead"),
        ("Lakeside Family Dentistry", "Tom Becker", "tom.becker@lakeside.example", "555-201-7788", "customer"),
        ("Summit Pediatric Dental", "Alicia Gomez", "agomez@summit.example", "(303) 555-0199", "prospect"),
        ("O'Brien & Smith-Jones Dental", "Seán O'Brien", "sean@obrien.example", "+44 20 7946 0958", "customer"),
    ]
    ids = {}
    for business, name, email, phone, status in people:
        ids[name] = contacts.create_contact(
            admin,
            {"business_name": business, "contact_name": name, "contact_email": email, "phone": phone, "status": status},
        ).card.id
    return ids


def names(scope, **query) -> list[str]:
    return [c.contact_name for c in contact_search.search_contacts(scope, ContactQuery(sort="name", **query)).items]


@pytest.mark.parametrize(
    "q, expected",
    [
        ("priya", ["Priya Raman"]),
        ("PRI", ["Priya Raman"]),  # prefix, any case
        ("bayview ortho", ["Priya Raman"]),  # every word must match
        ("family dent", ["Tom Becker"]),
        ("dental", ["Seán O'Brien", "Alicia Gomez"]),
        ("tom.becker@lake", ["Tom Becker"]),  # email prefix
        ("agomez", ["Alicia Gomez"]),
        ("555-201-7788", ["Tom Becker"]),  # phone, formatted
        ("5552010134", ["Priya Raman"]),
        ("+1 555 201", ["Priya Raman", "Tom Becker"]),
        ("0199", ["Alicia Gomez"]),  # last four digits
        ("5552", ["Priya Raman", "Tom Becker"]),  # the start of the number
        ("555 2017", ["Tom Becker"]),  # longer than the six leading digits the index holds
        ("+1 (303) 555-0199", ["Alicia Gomez"]),
        ("2079460958", ["Seán O'Brien"]),  # national digits of a number abroad
        ("smith-jones", ["Seán O'Brien"]),
        ("o'brien", ["Seán O'Brien"]),
        ("seán", ["Seán O'Brien"]),
        ("nobody", []),
    ],
)
def test_search_by_name_business_email_and_phone(admin, book, q, expected):
    assert sorted(names(admin, q=q)) == sorted(expected)


def test_hostile_search_text_is_just_text(admin, book):
    for q in ("' OR 1=1 --", "a:* | b", "%", "_", "\\", "!!!", "x" * 500, "(((", "a & | ! b"):
        contact_search.search_contacts(admin, ContactQuery(q=q))  # no error, no injection
    assert names(admin, q="%") == [] and names(admin, q="!!!") == []


def test_status_filter_and_unknown_status(admin, book):
    assert sorted(names(admin, status="customer")) == ["Seán O'Brien", "Tom Becker"]
    assert names(admin, status="customer", q="tom") == ["Tom Becker"]
    with pytest.raises(ValidationFailed, match="Unknown status"):
        contact_search.search_contacts(admin, ContactQuery(status="vip"))


def test_sorting(admin, book):
    assert names(admin) == ["Priya Raman", "Tom Becker", "Seán O'Brien", "Alicia Gomez"]  # by business name
    newest = [c.contact_name for c in contact_search.search_contacts(admin, ContactQuery(sort="newest")).items]
    assert newest == ["Seán O'Brien", "Alicia Gomez", "Tom Becker", "Priya Raman"]
    interactions.add_interaction(
        admin, book["Alicia Gomez"], {"interaction_type": "phone_call", "content": "Intro call"}
    )
    recent = [c.contact_name for c in contact_search.search_contacts(admin, ContactQuery(sort="recent")).items]
    assert recent[0] == "Alicia Gomez"
    with pytest.raises(ValidationFailed, match="Sort by"):
        contact_search.search_contacts(admin, ContactQuery(sort="random()"))


def test_pages_and_totals(admin):
    for i in range(30):
        contacts.create_contact(
            admin,
            {
                "business_name": f"Clinic {i:02d}",
                "contact_name": f"Person {i:02d}",
                "status": "lead" if i % 3 else "customer",
            },
        )
    first = contact_search.search_contacts(admin, ContactQuery(sort="name", per_page=12))
    assert (first.total, first.total_exact, first.pages, first.has_next) == (30, True, 3, True)
    third = contact_search.search_contacts(admin, ContactQuery(sort="name", per_page=12, page=3))
    assert [c.business_name for c in third.items] == [f"Clinic {i:02d}" for i in range(24, 30)]
    assert not third.has_next
    assert contact_search.search_contacts(admin, ContactQuery(status="customer")).total == 10
    assert contact_search.search_contacts(admin, ContactQuery(q="clinic")).total == 30  # counted, not from stats
    assert contact_search.search_contacts(admin, ContactQuery(page=99)).items == []


def test_broad_searches_count_up_to_a_cap_then_estimate(admin, monkeypatch):
    monkeypatch.setattr(contact_search, "COUNT_CAP", 5)
    for i in range(8):
        contacts.create_contact(admin, {"business_name": f"Clinic {i}", "contact_name": f"P {i}"})
    result = contact_search.search_contacts(admin, ContactQuery(q="clinic", per_page=3))
    assert result.total >= 6 and not result.total_exact and result.has_next
    assert contact_search.search_contacts(admin, ContactQuery(q="clinic 7")).total_exact


# --- custom fields -----------------------------------------------------------------------------------------


@pytest.fixture
def fields(admin):
    custom_fields.create_field(
        admin, label="Insurance plan", field_type="select", choices="Delta\nCigna, Aetna", required=True
    )
    custom_fields.create_field(admin, label="Chairs", field_type="number")
    custom_fields.create_field(admin, label="Renewal date", field_type="date")
    custom_fields.create_field(admin, label="Accepts new patients", field_type="boolean")
    custom_fields.create_field(admin, label="Billing email", field_type="email")
    custom_fields.create_field(admin, label="Referral note", field_type="text")
    return {d.name: d for d in custom_fields.list_fields(admin)}


def test_custom_field_values_are_typed_and_validated(admin, fields):
    assert set(fields) == {
        "insurance_plan",
        "chairs",
        "renewal_date",
        "accepts_new_patients",
        "billing_email",
        "referral_note",
    }
    detail = new_contact(
        admin,
        custom_fields={
            "insurance_plan": "cigna",
            "chairs": "12",
            "renewal_date": "2027-01-31",
            "accepts_new_patients": "yes",
            "billing_email": "ap@bayview.example",
        },
    )
    assert detail.custom_fields == {
        "insurance_plan": "Cigna",
        "chairs": 12,
        "renewal_date": "2027-01-31",
        "accepts_new_patients": True,
        "billing_email": "ap@bayview.example",
    }


@pytest.mark.parametrize(
    "values, field, message",
    [
        ({"insurance_plan": "Kaiser"}, "insurance_plan", "must be one of: Delta, Cigna, Aetna"),
        ({"insurance_plan": "Delta", "chairs": "twelve"}, "chairs", "Chairs must be a number"),
        ({"insurance_plan": "Delta", "renewal_date": "31/01/2027"}, "renewal_date", "must be a date like"),
        ({"insurance_plan": "Delta", "accepts_new_patients": "maybe"}, "accepts_new_patients", "must be yes or no"),
        ({"insurance_plan": "Delta", "billing_email": "ap@"}, "billing_email", "not a valid email"),
        ({"insurance_plan": "Delta", "referral_note": "r" * 1001}, "referral_note", "at most 1000 characters"),
        ({"chairs": 3}, "insurance_plan", "Insurance plan is required."),
        ({"insurance_plan": " "}, "insurance_plan", "Insurance plan is required."),
    ],
)
def test_wrong_custom_field_values_are_refused_and_nothing_written(admin, fields, values, field, message):
    before = counts()
    with pytest.raises(ValidationFailed) as info:
        new_contact(admin, custom_fields=values)
    assert message in info.value.fields[f"custom_fields.{field}"]
    assert counts() == before


def test_field_definitions_are_validated(admin, fields):
    before = counts()
    for kwargs, message in (
        ({"label": "Insurance plan", "field_type": "text"}, "already exists"),
        ({"label": "Tier", "field_type": "select", "choices": ""}, "needs at least one choice"),
        ({"label": "Tier", "field_type": "select", "choices": "Gold, gold"}, "listed twice"),
        ({"label": "", "field_type": "text"}, "Label is required."),
        ({"label": "Colour", "field_type": "colour"}, "Choose a field type"),
        ({"label": "Score", "field_type": "number", "order": "first"}, "whole number"),
    ):
        with pytest.raises((ValidationFailed, Conflict), match=message):
            custom_fields.create_field(admin, **kwargs)
    assert counts() == before


def test_deactivated_field_is_hidden_but_its_values_stay(admin, fields):
    contact = new_contact(admin, custom_fields={"insurance_plan": "Delta", "chairs": 8})
    custom_fields.set_active(admin, fields["chairs"].id, False)
    assert "chairs" not in {d.name for d in custom_fields.list_fields(admin)}
    assert "chairs" in {d.name for d in custom_fields.list_fields(admin, include_inactive=True)}
    # Editing the contact from a form that no longer shows the field keeps the stored value.
    updated = contacts.update_contact(
        admin, contact.card.id, {**contact.as_dict(), "custom_fields": {"insurance_plan": "Aetna"}}
    )
    assert updated.custom_fields == {"insurance_plan": "Aetna", "chairs": 8}
    with pytest.raises(ValidationFailed, match="deactivated"):
        contacts.update_contact(admin, contact.card.id, {"custom_fields": {"chairs": 9}}, partial=True)
    custom_fields.set_active(admin, fields["chairs"].id, True)
    assert contacts.get_contact(admin, contact.card.id).custom_fields["chairs"] == 8


def test_required_field_added_later_does_not_block_partial_edits(admin):
    contact = new_contact(admin)
    custom_fields.create_field(admin, label="Region", field_type="text", required=True)
    contacts.update_contact(admin, contact.card.id, {"city": "Del Mar"}, partial=True)
    with pytest.raises(ValidationFailed, match="Region is required"):
        contacts.update_contact(admin, contact.card.id, {**contact.as_dict(), "custom_fields": {}})


def test_filter_by_custom_field(admin, fields):
    new_contact(
        admin,
        custom_fields={
            "insurance_plan": "Delta",
            "chairs": 8,
            "accepts_new_patients": True,
            "referral_note": "Met at the Denver expo",
        },
    )
    new_contact(
        admin, contact_name="Tom Becker", contact_email="tom@x.example", custom_fields={"insurance_plan": "Cigna"}
    )
    assert names(admin, field="insurance_plan", value="delta") == ["Priya Raman"]
    assert names(admin, field="chairs", value="8") == ["Priya Raman"]
    assert names(admin, field="accepts_new_patients", value="yes") == ["Priya Raman"]
    assert names(admin, field="referral_note", value="denver") == ["Priya Raman"]
    assert sorted(names(admin, field="insurance_plan", value="")) == ["Priya Raman", "Tom Becker"]  # has a value
    with pytest.raises(ValidationFailed, match="must be a number"):
        contact_search.search_contacts(admin, ContactQuery(field="chairs", value="many"))
    with pytest.raises(ValidationFailed, match="no custom field"):
        contact_search.search_contacts(admin, ContactQuery(field="ghost", value="1"))


# --- timeline ----------------------------------------------------------------------------------------------


def test_timeline_entries_newest_first_with_tasks_and_follow_ups(admin):
    contact = new_contact(admin)
    cid = contact.card.id
    interactions.add_interaction(
        admin,
        cid,
        {
            "interaction_type": "meeting",
            "subject": "Demo",
            "content": "Showed the agent",
            "interaction_date": (utcnow() - timedelta(days=3)).isoformat(),
            "meta": {"location": "Zoom", "duration_minutes": 30},
        },
    )
    follow = interactions.add_interaction(
        admin,
        cid,
        {
            "interaction_type": "follow_up",
            "content": "Send pricing",
            "due_at": (utcnow() + timedelta(days=2)).date().isoformat(),
        },
    )
    entries = interactions.timeline(admin, cid)
    assert [e.type for e in entries] == ["follow_up", "meeting"]
    assert entries[1].facts == ["Minutes: 30", "Location: Zoom"]
    assert follow.due_at == (utcnow() + timedelta(days=2)).date().isoformat() and not follow.done
    assert [f.id for f in interactions.upcoming_follow_ups(admin)] == [follow.id]
    interactions.set_done(admin, follow.id, True)
    assert interactions.upcoming_follow_ups(admin) == []
    assert interactions.timeline(admin, cid)[0].done


def test_last_interaction_follows_adds_edits_and_deletes(admin):
    cid = new_contact(admin).card.id
    old = interactions.add_interaction(
        admin, cid, {"interaction_type": "email", "content": "Sent brochure", "interaction_date": "2026-01-15"}
    )
    assert contacts.get_contact(admin, cid).card.last_interaction_at.startswith("2026-01-15T12:00")
    new = interactions.add_interaction(admin, cid, {"interaction_type": "phone_call", "content": "Call"})
    assert contacts.get_contact(admin, cid).card.last_interaction_at[:10] == utcnow().date().isoformat()
    interactions.delete_interaction(admin, new.id)
    assert contacts.get_contact(admin, cid).card.last_interaction_at.startswith("2026-01-15")
    interactions.update_interaction(admin, old.id, {"interaction_date": "2026-02-01"})
    assert contacts.get_contact(admin, cid).card.last_interaction_at.startswith("2026-02-01")
    interactions.delete_interaction(admin, old.id)
    assert contacts.get_contact(admin, cid).card.last_interaction_at == ""


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"interaction_type": "fax", "content": "x"}, "interaction_type", "Choose a type"),
        ({"interaction_type": "note", "content": " "}, "content", "Details is required."),
        ({"interaction_type": "note", "content": "x", "due_at": "2027-01-01"}, "due_at", "Only tasks and follow-ups"),
        ({"interaction_type": "task", "content": "x", "due_at": "soon"}, "due_at", "date like"),
        ({"interaction_type": "note", "content": "x", "subject": "s" * 256}, "subject", "at most 255"),
        ({"interaction_type": "note", "content": "x" * 20_001}, "content", "at most 20000"),
        (
            {"interaction_type": "note", "content": "x", "interaction_date": "3026-01-01"},
            "interaction_date",
            "between 1900",
        ),
        ({"interaction_type": "note", "content": "x", "meta": {"blob": "b" * 9000}}, "meta", "at most 8000 bytes"),
    ],
)
def test_bad_timeline_input_is_refused(admin, data, field, message):
    cid = new_contact(admin).card.id
    before = counts()
    with pytest.raises(ValidationFailed) as info:
        interactions.add_interaction(admin, cid, data)
    assert message in info.value.fields[field]
    assert counts() == before


def test_only_tasks_and_follow_ups_can_be_done(admin):
    cid = new_contact(admin).card.id
    note = interactions.add_interaction(admin, cid, {"interaction_type": "note", "content": "x"})
    with pytest.raises(ValidationFailed, match="Only tasks and follow-ups"):
        interactions.set_done(admin, note.id, True)


# --- statistics and dashboard ------------------------------------------------------------------------------


def stats_match_contacts() -> bool:
    with session_scope() as s:
        stats = s.execute(
            text("SELECT tenant_id, day, status, n FROM contact_stats WHERE n <> 0 ORDER BY 1, 2, 3")
        ).all()
        actual = s.execute(
            text(
                "SELECT tenant_id, (created_at AT TIME ZONE 'UTC')::date, status, count(*) FROM contacts GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
            )
        ).all()
    return [tuple(r) for r in stats] == [tuple(r) for r in actual]


def test_statistics_follow_every_kind_of_change(admin, other):
    ids = [new_contact(admin, contact_email=f"p{i}@x.example").card.id for i in range(5)]
    new_contact(other)
    assert stats_match_contacts()
    contacts.set_status(admin, ids[0], "customer")
    contacts.update_contact(admin, ids[1], {"city": "Del Mar"}, partial=True)
    contacts.delete_contact(admin, ids[2])
    with session_scope() as s:  # bulk statements, as the CSV import issues them
        s.execute(
            text(
                "UPDATE contacts SET status = 'prospect', created_at = created_at - interval '20 days' WHERE tenant_id = :t AND status = 'lead'"
            ),
            {"t": admin.tenant_id},
        )
        s.execute(
            text(
                "INSERT INTO contacts (tenant_id, business_name, contact_name, email_normalized, status) "
                "VALUES (:t, 'A', 'A', 'p3@x.example', 'lead'), (:t, 'B', 'B', 'new@x.example', 'lead') "
                "ON CONFLICT (tenant_id, email_normalized) DO UPDATE SET status = EXCLUDED.status"
            ),
            {"t": admin.tenant_id},
        )
    assert stats_match_contacts()
    totals = {t.status: t.count for t in crm_dashboard.status_totals(admin)}
    assert totals == {
        "lead": 2,
        "prospect": 2,
        "qualified": 0,
        "customer": 1,
        "closed_won": 0,
        "closed_lost": 0,
        "inactive": 0,
    }
    with session_scope() as s:
        s.execute(text("DELETE FROM tenants WHERE id = :t"), {"t": other.tenant_id})
    assert stats_match_contacts()


def test_dashboard_figures(admin):
    cid = new_contact(admin).card.id
    new_contact(admin, contact_email="t@x.example", status="customer")
    interactions.add_interaction(admin, cid, {"interaction_type": "note", "content": "Left a voicemail"})
    interactions.add_interaction(
        admin, cid, {"interaction_type": "task", "content": "Prepare quote", "due_at": "2026-01-02"}
    )
    board = crm_dashboard.crm_dashboard(admin)
    assert {t.status: t.count for t in board.totals}["customer"] == 1
    assert board.growth.total == 2 and board.growth.last_30_days == 2
    assert board.growth.per_week[-1][1] == 2 and len(board.growth.per_week) == 12
    assert [r.content for r in board.recent] == ["Prepare quote", "Left a voicemail"]
    assert board.recent[0].contact_name == "Priya Raman"
    assert [f.content for f in board.follow_ups] == ["Prepare quote"] and board.follow_ups[0].overdue


def test_multi_word_search_pages_through_the_sort_window_exactly(admin):
    """The bounded sort-order walk used for correlated words returns exactly what the plain query returns."""
    for i in range(40):
        contacts.create_contact(
            admin, {"business_name": f"Coastal Oral Surgery {i:02d}", "contact_name": f"P {i}", "status": "lead"}
        )
        contacts.create_contact(
            admin, {"business_name": f"Harbor Dental {i:02d}", "contact_name": f"Q {i}", "status": "lead"}
        )
    with session_scope() as s:
        s.execute(text("ANALYZE contacts"))
    query = ContactQuery(q="oral surg", status="lead", sort="name", page=3, per_page=5)
    with session_scope() as s:
        base = contact_search._base_filters(admin, query, [])
        windowed = contact_search._windowed_page(s, base, query.q, "name", 10, 6)
    assert windowed is not None
    assert [r.business_name for r in windowed[0]] == [f"Coastal Oral Surgery {i:02d}" for i in range(10, 16)]
    page = contact_search.search_contacts(admin, query)
    assert [c.business_name for c in page.items] == [f"Coastal Oral Surgery {i:02d}" for i in range(10, 15)]
    assert page.has_next and page.total == 40


# --- what the database guarantees without per-row foreign keys ---------------------------------------------


def test_search_document_splits_plain_names_exactly_like_the_text_parser():
    """The cheap branch of SEARCH_DOCUMENT (ASCII letters, digits, spaces) gives to_tsvector's lexemes."""
    import random
    import string

    rng = random.Random(4)
    alphabet = string.ascii_letters + string.digits * 3 + "eE   "
    names = [
        "San Diego Dental Group 123",
        "Person 123 Example",
        "  Two  spaces ",
        "",
        "1st Street 2nd",
        "A1B2 C3",
        "ABC 007",
        "1e5 lab",
        "x2E3y",
        "O'Brien & Smith-Jones",
        "Seán Núñez",
        "acme.com 1.5",
    ]
    names += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(3000)]
    with session_scope() as s:
        differing = (
            s.execute(
                text(
                    "SELECT business_name FROM (SELECT n AS business_name, '' AS contact_name, NULL AS phone_normalized "
                    "FROM unnest(CAST(:names AS text[])) AS n) AS c "
                    f"WHERE strip({models_crm.SEARCH_DOCUMENT}) <> strip(to_tsvector('simple', business_name || ' '))"
                ),
                {"names": names},
            )
            .scalars()
            .all()
        )
    assert differing == []


def test_contacts_must_name_an_existing_organisation_and_user(admin):
    from sqlalchemy.exc import IntegrityError

    cid = new_contact(admin).card.id
    ghost = "00000000-0000-4000-8000-000000000000"
    insert = (
        "INSERT INTO contacts (tenant_id, business_name, contact_name, created_by_user_id) "
        "VALUES (:t, 'Ghost', 'Ghost', :u)"
    )
    for statement, params in (
        (insert, {"t": ghost, "u": None}),
        (insert, {"t": admin.tenant_id, "u": ghost}),
        ("UPDATE contacts SET tenant_id = :t WHERE id = :id", {"t": ghost, "id": cid}),
        ("UPDATE contacts SET created_by_user_id = :u WHERE id = :id", {"u": ghost, "id": cid}),
    ):
        with pytest.raises(IntegrityError, match="ForeignKeyViolation"):
            with session_scope() as s:
                s.execute(text(statement), params)
    with session_scope() as s:
        s.execute(text(insert), {"t": admin.tenant_id, "u": admin.user_id})
    assert counts()[0] == 2


def test_deleting_an_organisation_deletes_its_contacts_and_a_user_leaves_their_contacts(admin, other, make_user):
    mine = new_contact(admin).card.id
    interactions.add_interaction(admin, mine, {"interaction_type": "note", "content": "Hello"})
    colleague = make_user(other.tenant_id, role="admin").scope
    theirs = new_contact(colleague, contact_email="t@x.example").card.id
    with session_scope() as s:
        s.execute(text("DELETE FROM users WHERE id = :u"), {"u": colleague.user_id})
        assert s.get(Contact, theirs).created_by_user_id is None
        s.execute(text("DELETE FROM tenants WHERE id = :t"), {"t": admin.tenant_id})
    with session_scope() as s:
        assert [str(i) for i in s.exec(select(Contact.id)).all()] == [theirs]
        assert s.exec(select(func.count()).select_from(ContactInteraction)).one() == 0
    assert stats_match_contacts()


def test_an_incoming_call_finds_its_contact_by_number(admin, other):
    from app.services.calls.call_records import contact_for_number

    new_contact(admin, contact_email="uk@x.example", phone="+44 20 7946 0958")
    priya = new_contact(admin).card.id
    new_contact(other)  # the same number in another organisation
    with session_scope() as s:
        assert str(contact_for_number(s, admin, "+15552010134").id) == priya
        assert contact_for_number(s, admin, "+442079460958").contact_email == "uk@x.example"
        assert contact_for_number(s, admin, "+15552010135") is None
        assert contact_for_number(s, admin, "+12079460958") is None  # same national digits, other country
        assert contact_for_number(s, admin, "anonymous") is None
