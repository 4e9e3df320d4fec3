"""Column mapping for CSV imports: what each column can become, automatic matching, and saved mappings.

A mapping is a list with one target per column: "skip", "id", a contact field ("business_name", ...),
"first_name"/"last_name" (joined into the contact name), or "cf:<key>" for a custom field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from app.services.accounts.scope import Scope
from app.services.crm import custom_fields as cf
from app.services.crm.contact_rules import CONTACT_FIELDS
from app.services.errors import Conflict, ValidationFailed
from app.services.validation import clean_text
from models import ImportMapping
from models.db import session_scope

SKIP = "skip"
ID = "id"
FIRST_NAME, LAST_NAME = "first_name", "last_name"
CUSTOM_PREFIX = "cf:"
CORE_LABELS: dict[str, str] = {
    **{name: label for name, (label, _, _) in CONTACT_FIELDS.items()},
    "status": "Status",
    FIRST_NAME: "First name (joined into Contact name)",
    LAST_NAME: "Last name (joined into Contact name)",
    ID: "Contact ID (from an export)",
}
# Normalised header -> target. Headers are compared lower-case with everything but letters and digits removed.
SYNONYMS: dict[str, str] = {}
for target, words in {
    "business_name": "business businessname company companyname organisation organization organisationname "
    "organizationname account accountname practice practicename clinic firm employer",
    "contact_name": "name contactname fullname contact person contactperson customername client clientname",
    FIRST_NAME: "firstname first givenname forename",
    LAST_NAME: "lastname last surname familyname",
    "contact_email": "email emailaddress mail workemail contactemail emailid",
    "contact_role": "role title jobtitle position contactrole",
    "phone": "phone phonenumber telephone tel mobile cell cellphone mobilephone workphone phone1 contactphone",
    "website": "website web url site homepage webpage",
    "address": "address street streetaddress address1 addressline1 mailingaddress",
    "city": "city town locality",
    "state": "state province region stateprovince stateregion county",
    "notes": "notes note comments comment description remarks",
    "status": "status stage leadstatus lifecyclestage pipelinestage",
    "stripe_customer_id": "stripecustomerid stripecustomer stripeid",
    ID: "id contactid recordid",
}.items():
    for word in words.split():
        SYNONYMS[word] = target


def normalise_header(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", re.sub(r" \(\d+\)$", "", header).lower())


@dataclass(frozen=True)
class Target:
    value: str
    label: str


def targets(definitions: list[cf.FieldDef]) -> list[Target]:
    """Everything a column can be mapped to, in the order a picker shows them."""
    return (
        [Target(SKIP, "Don't import")]
        + [Target(k, v) for k, v in CORE_LABELS.items()]
        + [Target(CUSTOM_PREFIX + d.name, f"{d.label} (custom field)") for d in definitions if d.active]
    )


def auto_map(headers: list[str], definitions: list[cf.FieldDef]) -> list[str]:
    """A target per header: an exact field key first, then a custom field's key or label, then synonyms.
    Each target is used once (the first matching column wins); the rest are skipped."""
    custom = {}
    for d in definitions:
        if d.active:
            custom.setdefault(normalise_header(d.name), CUSTOM_PREFIX + d.name)
            custom.setdefault(normalise_header(d.label), CUSTOM_PREFIX + d.name)
    core_keys = {normalise_header(k): k for k in CORE_LABELS}
    used: set[str] = set()
    mapping = []
    for header in headers:
        key = normalise_header(header)
        target = core_keys.get(key) or custom.get(key) or SYNONYMS.get(key) or SKIP
        if target in used:
            target = SKIP
        if target != SKIP:
            used.add(target)
        mapping.append(target)
    return mapping


def validate_mapping(mapping: list[str], headers: list[str], definitions: list[cf.FieldDef], *, updating: bool) -> None:
    """ValidationFailed when the mapping cannot work: unknown targets, a target used twice, nothing to import,
    or (unless existing contacts are being updated) no way to fill the required name fields."""
    allowed = {t.value for t in targets(definitions)}
    problems: dict[str, str] = {}
    if len(mapping) != len(headers):
        raise ValidationFailed({"mapping": "The mapping does not match the file's columns. Upload the file again."})
    seen: dict[str, str] = {}
    for header, target in zip(headers, mapping):
        if target not in allowed:
            problems[f"column:{header}"] = f"“{header}” is mapped to an unknown field."
        elif target != SKIP and target in seen:
            problems[f"column:{header}"] = (
                f"“{seen[target]}” and “{header}” are both mapped to {CORE_LABELS.get(target, target)}."
            )
        seen.setdefault(target, header)
    chosen = set(mapping) - {SKIP}
    if not chosen:
        problems["mapping"] = "Map at least one column to a contact field."
    elif not updating:
        if "business_name" not in chosen:
            problems["business_name"] = "Map a column to Business name: every new contact needs one."
        if "contact_name" not in chosen and not chosen & {FIRST_NAME, LAST_NAME}:
            problems["contact_name"] = "Map a column to Contact name (or to First name and Last name)."
    if problems:
        raise ValidationFailed(problems)


# --- saved mappings ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedMapping:
    id: str
    name: str
    columns: dict[str, str]  # normalised header -> target


def saved_mappings(scope: Scope) -> list[SavedMapping]:
    scope.require_admin()
    with session_scope() as session:
        rows = session.exec(
            select(ImportMapping).where(ImportMapping.tenant_id == scope.tenant_id).order_by(ImportMapping.name)
        ).all()
        return [SavedMapping(str(r.id), r.name, dict(r.mapping.get("columns", {}))) for r in rows]


def save_mapping(scope: Scope, name: str, headers: list[str], mapping: list[str]) -> SavedMapping:
    """Remember a mapping by header name, to apply to the next file with the same columns."""
    scope.require_admin()
    label, problem = clean_text(name, max_length=120, label="Mapping name", required=True)
    if problem:
        raise ValidationFailed({"mapping_name": problem})
    columns = {normalise_header(h): t for h, t in zip(headers, mapping) if t != SKIP}
    with session_scope() as session:
        row = session.exec(
            select(ImportMapping).where(ImportMapping.tenant_id == scope.tenant_id, ImportMapping.name == label)
        ).first()
        if row is None:
            row = ImportMapping(tenant_id=scope.tenant_id, name=label, mapping={"columns": columns})
        else:
            row.mapping = {"columns": columns}
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            raise Conflict(f"A mapping called “{label}” was just saved by someone else. Try again.") from None
        return SavedMapping(str(row.id), row.name, columns)


def apply_saved(saved: SavedMapping, headers: list[str], definitions: list[cf.FieldDef]) -> list[str]:
    """A saved mapping applied to these headers; columns it does not know are matched automatically."""
    automatic = auto_map(headers, definitions)
    allowed = {t.value for t in targets(definitions)}
    mapping, used = [], set()
    for header, guess in zip(headers, automatic):
        target = saved.columns.get(normalise_header(header))
        target = target if target in allowed else guess
        if target in used:
            target = SKIP
        used.add(target)
        mapping.append(target)
    return mapping


def options_from(raw: dict[str, Any]) -> dict[str, Any]:
    mode = raw.get("duplicates", "skip")
    if mode not in ("create_only", "update", "skip"):
        raise ValidationFailed({"duplicates": "Choose what happens to duplicates: create only, update or skip."})
    return {"duplicates": mode, "keep_existing_when_empty": bool(raw.get("keep_existing_when_empty", True))}
