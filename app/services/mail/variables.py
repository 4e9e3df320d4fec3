"""The variables an email template may use, and their values for one contact.

`{{ contact_name }}`, `{{ business_name }}` and every other contact field, `{{ organization_name }}` (the
sending organisation), and every active custom field by its key. Values are plain strings, numbers and
booleans (the sandbox never sees an ORM object); a field with no value is an empty string, never "None".
A custom field whose key is also a contact field's name is left out: the contact field wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from app.services.accounts.scope import Scope
from app.services.crm import custom_fields as cf

# Contact columns a template may use, with the label the editor shows.
CONTACT_VARIABLES: dict[str, str] = {
    "contact_name": "Contact name",
    "business_name": "Business name",
    "contact_email": "Email",
    "contact_role": "Role",
    "phone": "Phone",
    "website": "Website",
    "address": "Address",
    "city": "City",
    "state": "State",
    "status": "Status",
    "notes": "Notes",
}
ORGANISATION_VARIABLES: dict[str, str] = {"organization_name": "Your organisation's name"}


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    source: str  # contact, custom or organisation

    @property
    def tag(self) -> str:
        return "{{ " + self.name + " }}"

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "label": self.label, "source": self.source, "tag": self.tag}


def available(definitions: Iterable[cf.FieldDef]) -> list[Variable]:
    """Every variable, given the organisation's custom fields (inactive ones are not offered)."""
    variables = [Variable(n, label, "contact") for n, label in CONTACT_VARIABLES.items()]
    variables += [Variable(n, label, "organisation") for n, label in ORGANISATION_VARIABLES.items()]
    variables += [
        Variable(d.name, d.label, "custom") for d in definitions if d.active and d.name not in CONTACT_VARIABLES
    ]
    return variables


def for_organisation(scope: Scope, session: Session | None = None) -> list[Variable]:
    return available(cf.list_fields(scope, session=session))


def custom_in(names: Iterable[str]) -> list[str]:
    """The custom-field variables among `names` (what is neither a contact column nor the organisation)."""
    return sorted(n for n in names if n not in CONTACT_VARIABLES and n not in ORGANISATION_VARIABLES)


def _plain(value: Any) -> str | int | float | bool:
    if value is None:
        return ""
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


def contact_values(
    row: Mapping[str, Any] | Any, custom: Mapping[str, Any] | None, organisation: str, custom_keys: Iterable[str]
) -> dict[str, Any]:
    """The template data for one contact: `row` holds the contact columns (a mapping or an object with them),
    `custom` its custom_fields JSON, `custom_keys` the custom variables in use."""
    get = row.get if isinstance(row, Mapping) else (lambda name: getattr(row, name, None))
    data: dict[str, Any] = {name: _plain(get(name)) for name in CONTACT_VARIABLES}
    data["organization_name"] = organisation
    custom = custom or {}
    for key in custom_keys:
        data[key] = _plain(custom.get(key))
    return data
