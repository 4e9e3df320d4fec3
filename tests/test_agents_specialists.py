"""Specialists: the shipped catalogue, seeding every organisation, admin-only changes, validation, isolation."""

from __future__ import annotations

import threading

import pytest
from sqlmodel import func, select

from app.services.accounts import tenants
from app.services.accounts.quotas import QuotaReached
from app.services.accounts.scope import Scope
from app.services.agents import specialists
from app.services.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from models import Specialist, Tenant
from models.db import session_scope

NEW = {
    "slug": "orthodontics",
    "name": "Orthodontics",
    "description": "Braces and aligners.",
    "prompt": "You are the orthodontics specialist.",
    "knowledge": "Aligners are worn 22 hours a day.",
    "keywords": "braces,  aligners , , invisalign",
}


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
        ({"knowledge": "x" * 50_001}, "knowledge", "Knowledge is at most 50,000 characters (this text has 50,001)."),
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
    assert len(specialists.list_specialists(Scope.system(tenant_id), active_only=True)) == len(
        specialists.list_specialists(org)
    )


def set_quotas(tenant_id, **values: int) -> None:
    """An organisation's quota overrides, as a super admin sets them (tenants.settings["quotas"])."""
    with session_scope() as session:
        tenant = session.get(Tenant, tenant_id)
        tenant.settings = {**(tenant.settings or {}), "quotas": values}
        session.add(tenant)


LIMIT_MESSAGE = (
    "Your organisation has reached its limit of 100 specialists (disabled ones count too). Edit or "
    "re-enable an existing specialist instead."
)


def test_an_organisation_has_at_most_100_specialists_even_when_admins_add_them_at_once(make_org):
    org = make_org().scope
    catalogue = len(specialists.list_specialists(org))
    for n in range(99 - catalogue):
        specialists.create_specialist(org, **{**NEW, "slug": f"extra-{n}"})
    assert specialists.specialist_limits(org).count == 99 and not specialists.specialist_limits(org).full

    outcomes: list[str] = []
    start = threading.Barrier(5)

    def add(n: int) -> None:
        start.wait()
        try:
            specialists.create_specialist(org, **{**NEW, "slug": f"racer-{n}"})
            outcomes.append("created")
        except QuotaReached as exc:
            outcomes.append(exc.message)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [LIMIT_MESSAGE] * 4 + ["created"]
    assert len(specialists.list_specialists(org)) == 100 and specialists.specialist_limits(org).full

    # Disabled specialists still count; editing one is still possible.
    one = specialists.list_specialists(org)[0]
    specialists.set_active(org, one.id, False)
    with pytest.raises(QuotaReached) as refused:
        specialists.create_specialist(org, **{**NEW, "slug": "one-more"})
    assert refused.value.status_code == 409 and refused.value.message == LIMIT_MESSAGE
    assert specialists.update_specialist(org, one.id, **{**one.__dict__, "name": "Renamed"}).name == "Renamed"


def test_knowledge_is_limited_by_the_organisations_quota_on_create_and_edit(make_org):
    org = make_org().scope
    created = specialists.create_specialist(org, **{**NEW, "knowledge": "k" * 50_000})
    assert len(created.knowledge) == 50_000
    set_quotas(org.tenant_id, specialist_knowledge_chars=1_000, max_specialists=200)
    assert specialists.specialist_limits(org) == specialists.SpecialistLimits(23, 200, 1_000)
    with pytest.raises(ValidationFailed) as refused:
        specialists.update_specialist(org, created.id, **{**NEW, "knowledge": "k" * 1_001})
    assert refused.value.fields == {
        "knowledge": (
            "Knowledge is at most 1,000 characters (this text has 1,001). Keep the reference notes callers' questions "
            "need, or split the topic between two specialists."
        )
    }
    assert len(specialists.get_specialist(org, created.id).knowledge) == 50_000  # unchanged
    with pytest.raises(ValidationFailed):
        specialists.create_specialist(org, **{**NEW, "slug": "longer", "knowledge": "k" * 1_001})
    assert specialists.create_specialist(org, **{**NEW, "slug": "short", "knowledge": "k" * 1_000}).slug == "short"
