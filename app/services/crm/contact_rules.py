"""The rules of a contact: its fields, statuses and their labels, and `clean_contact`, which turns user input
into column values. The forms, the REST API and the CSV import all apply these."""

from __future__ import annotations

from typing import Any

from app.services.crm import custom_fields as cf
from app.services.errors import ValidationFailed
from app.services.phone_rules import normalise_phone, phone_problem
from app.services.validation import (
    STRIPE_CUSTOMER_PROBLEM,
    STRIPE_CUSTOMER_RE,
    clean_text,
    email_problem,
    normalise_email,
    website_url,
)
from models import Contact
from models.crm import CONTACT_STATUSES

STATUS_LABELS = {
    "lead": "Lead",
    "prospect": "Prospect",
    "qualified": "Qualified",
    "customer": "Customer",
    "closed_won": "Closed won",
    "closed_lost": "Closed lost",
    "inactive": "Inactive",
}
STATUS_COLORS = {
    "lead": "gray",
    "prospect": "blue",
    "qualified": "violet",
    "customer": "green",
    "closed_won": "grass",
    "closed_lost": "red",
    "inactive": "orange",
}
# Column -> (label, max length, required). The same rules serve the forms, the REST API and the CSV import.
CONTACT_FIELDS: dict[str, tuple[str, int, bool]] = {
    "business_name": ("Business name", 255, True),
    "contact_name": ("Contact name", 255, True),
    "contact_email": ("Email", 254, False),
    "contact_role": ("Role", 255, False),
    "phone": ("Phone", 64, False),
    "website": ("Website", 500, False),
    "address": ("Address", 2000, False),
    "city": ("City", 120, False),
    "state": ("State", 120, False),
    "notes": ("Notes", 10000, False),
    "stripe_customer_id": ("Stripe customer id", 255, False),
}


def status_problem(status: Any) -> str | None:
    if status in CONTACT_STATUSES:
        return None
    return f"Unknown status “{str(status)[:40]}”. Use one of: {', '.join(CONTACT_STATUSES)}."


def clean_contact(
    data: dict[str, Any], definitions: list[cf.FieldDef], existing: Contact | None = None, *, partial: bool = False
) -> dict[str, Any]:
    """Column values for a contact from user input, or ValidationFailed naming every problem.

    `partial` (API PATCH): only the keys present change; otherwise every contact field is taken from `data`.
    """
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name, (label, max_length, required) in CONTACT_FIELDS.items():
        if partial and name not in data:
            continue
        raw = data.get(name)
        if raw is not None and not isinstance(raw, str):
            raw = str(raw)
        value, problem = clean_text(raw, max_length=max_length, label=label, required=required)
        if problem:
            errors[name] = problem
            continue
        values[name] = value
    email = values.get("contact_email")
    if email and (problem := email_problem(email)):
        errors["contact_email"] = problem
    if "contact_email" in values:
        values["email_normalized"] = normalise_email(email) or None
    phone = values.get("phone")
    if "phone" in values:
        normalized = normalise_phone(phone) if phone else None
        if phone and normalized is None:
            errors["phone"] = phone_problem(phone)
        values["phone_normalized"] = normalized
    website = values.get("website")
    if website:
        values["website"] = website_url(website)
    customer = values.get("stripe_customer_id")
    if customer and not STRIPE_CUSTOMER_RE.match(customer):
        errors["stripe_customer_id"] = STRIPE_CUSTOMER_PROBLEM
    if not partial or "status" in data:
        status = data.get("status") or ("lead" if existing is None else existing.status)
        if problem := status_problem(status):
            errors["status"] = problem
        else:
            values["status"] = status
    if not partial or "custom_fields" in data:
        raw_custom = data.get("custom_fields") or {}
        if not isinstance(raw_custom, dict):
            errors["custom_fields"] = "custom_fields must be an object of field key to value."
        else:
            try:
                values["custom_fields"] = cf.validate_values(
                    definitions, raw_custom, existing.custom_fields if existing else None, partial=partial
                )
            except ValidationFailed as exc:
                errors.update(exc.fields)
    if errors:
        raise ValidationFailed(errors)
    return values
