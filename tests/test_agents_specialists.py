"""Specialists: the shipped catalogue, seeding every organisation, admin-only changes, validation, isolation."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from app.services import tenants
from app.services.agents import specialists
from app.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from app.services.scope import Scope
from models import Specialist
from models.db import session_scope

NEW = {"slug": "orthodontics", "name": "Orthodontics", "description": "Braces and aligners.",
       "prompt": "You are the orthodontics specialist.", "knowledge": "Aligners are worn 22 hours a day.",
       "keywords": "braces,  aligners , , invisalign"}


def test_the_catalogue_has_at_least_20_specialists_with_real_content():
    catalogue = specialists.load_catalogue()
    assert len(catalogue) >= 20
    assert len({e["slug"] for e in catalogue}) == len(catalogue)
    for entry in catalogue:
        assert entry["name"] and entry["description"] and entry["prompt"]
        assert len(entry["knowledge"].split()) >= 250, entry["slug"]  # several paragraphs of reference text
        assert entry["knowledge"].count("\n\n") >= 3, entry["slug"]


def test_every_new_organisation_gets_the_catalogue(make_org):
    org = make_org().scope
    rows = specialists.list_specialists(org)
    assert len(rows) == len(specialists.load_catalogue())
    assert all(r.is_default and r.is_active for r in rows)


def test_seeding_existing_organisations_is_idempotent_and_keeps_edits(make_org):
    org = make_org().scope
    hipaa = next(s for s in specialists.list_specialists(org) if s.slug == "hipaa-privacy")
    specialists.update_specialist(org, hipaa.id, **{**hipaa.__dict__, "name": "Privacy (our rules)"})
    specialists.set_active(org, hipaa.id, False)
    with session_scope() as s:
        s.delete(s.exec(select(Specialist).where(Specialist.slug == "veterinary")).one())
    assert specialists.seed_all_organisations() == 1  # only the deleted one comes back
    assert specialists.seed_all_organisations() == 0
    again = specialists.get_specialist(org, hipaa.id)
    assert again.name == "Privacy (our rules)" and not again.is_active


def test_admin_creates_edits_and_disables_a_specialist(make_org):
    org = make_org().scope
    created = specialists.create_specialist(org, **NEW)
    assert created.keywords == "braces, aligners, invisalign" and not created.is_default
    edited = specialists.update_specialist(org, created.id, **{**NEW, "slug": "ignored", "name": "Braces & Aligners"})
    assert edited.name == "Braces & Aligners" and edited.slug == "orthodontics"
    specialists.set_active(org, created.id, False)
    assert "orthodontics" not in [s.slug for s in specialists.list_specialists(org, active_only=True)]
    assert "orthodontics" in [s.slug for s in specialists.list_specialists(org)]


def test_the_slug_defaults_to_the_name(make_org):
    org = make_org().scope
    assert specialists.create_specialist(org, **{**NEW, "slug": "", "name": "Pediatric Care"}).slug == "pediatric-care"


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"name": "  "}, "name", "Name is required."),
        ({"description": ""}, "description", "Description is required."),
        ({"prompt": ""}, "prompt", "System prompt is required."),
        ({"slug": "Bad Slug!"}, "slug", "lower-case letters"),
        ({"slug": "moderator"}, "slug", "reserved"),
        ({"knowledge": "x" * 50_001}, "knowledge", "at most 50000 characters"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_changes_nothing(make_org, change, field, message):
    org = make_org().scope
    before = len(specialists.list_specialists(org))
    with pytest.raises(ValidationFailed) as info:
        specialists.create_specialist(org, **{**NEW, **change})
    assert message in info.value.fields[field]
    assert len(specialists.list_specialists(org)) == before


def test_duplicate_slugs_conflict(make_org):
    org = make_org().scope
    with pytest.raises(Conflict, match="already exists"):
        specialists.create_specialist(org, **{**NEW, "slug": "hipaa-privacy"})


def test_members_read_active_specialists_but_cannot_change_them(make_org, make_user):
    admin = make_org().scope
    member = make_user(admin.tenant_id).scope
    target = specialists.list_specialists(admin)[0]
    specialists.set_active(admin, target.id, False)
    assert target.slug not in [s.slug for s in specialists.list_specialists(member)]
    with pytest.raises(NotFound):
        specialists.get_specialist(member, target.id)
    for change in (
        lambda: specialists.create_specialist(member, **NEW),
        lambda: specialists.update_specialist(member, target.id, **NEW),
        lambda: specialists.set_active(member, target.id, True),
    ):
        with pytest.raises(PermissionDenied):
            change()
    assert not specialists.get_specialist(admin, target.id).is_active


def test_organisations_never_see_or_change_each_others_specialists(make_org):
    first, second = make_org("First Dental").scope, make_org("Second Dental").scope
    mine = specialists.create_specialist(first, **NEW)
    assert "orthodontics" not in [s.slug for s in specialists.list_specialists(second)]
    for attempt in (
        lambda: specialists.get_specialist(second, mine.id),
        lambda: specialists.update_specialist(second, mine.id, **NEW),
        lambda: specialists.set_active(second, mine.id, False),
        lambda: specialists.get_specialist(second, "not-a-uuid"),
    ):
        with pytest.raises(NotFound):
            attempt()
    assert specialists.get_specialist(first, mine.id).is_active
    with session_scope() as s:
        assert s.exec(select(func.count()).select_from(Specialist).where(Specialist.slug == "orthodontics")).one() == 1


def test_system_scope_reads_for_voice_service(make_org):
    org = make_org().scope
    with session_scope() as s:
        tenant_id = tenants.get_by_slug(s, "acme-dental").id
    assert len(specialists.list_specialists(Scope.system(tenant_id), active_only=True)) == len(specialists.list_specialists(org))
