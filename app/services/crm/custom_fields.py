"""Custom fields: per-organisation contact fields, and the server-side validation of their values.

Values live in ``contacts.custom_fields`` (JSONB) keyed by the field's ``field_name``, typed as JSON:
numbers as numbers, booleans as booleans, dates as ``YYYY-MM-DD`` strings, the rest as strings.
Deactivating a field hides it from forms and filters; its stored values stay untouched.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.services.accounts.scope import Scope, owned_row
from app.services.errors import Conflict, ValidationFailed
from app.services.phone_rules import normalise_phone
from app.services.validation import clean_text, email_problem
from models import CustomField
from models.crm import CUSTOM_FIELD_TYPES
from models.db import session_scope, use_session

TYPE_LABELS = {
    "text": "Text",
    "number": "Number",
    "date": "Date",
    "email": "Email",
    "phone": "Phone",
    "select": "Choice list",
    "boolean": "Yes / no",
}
MAX_FIELDS = 50
MAX_CHOICES = 50
MAX_TEXT_VALUE = 1000
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


@dataclass(frozen=True)
class FieldDef:
    id: str
    name: str
    label: str
    type: str
    choices: list[str] = field(default_factory=list)
    required: bool = False
    order: int = 0
    active: bool = True

    @property
    def type_label(self) -> str:
        return TYPE_LABELS[self.type]

    @functools.cached_property
    def choice_lookup(self) -> dict[str, str]:
        """lower-case choice -> choice, so matching a select value costs one lookup (imports do it a million times)."""
        return {c.lower(): c for c in self.choices}

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "choices": list(self.choices), "type_label": self.type_label}


def _def(row: CustomField) -> FieldDef:
    return FieldDef(
        id=str(row.id),
        name=row.field_name,
        label=row.field_label,
        type=row.field_type,
        choices=list(row.field_options.get("choices", [])),
        required=row.is_required,
        order=row.display_order,
        active=row.is_active,
    )


def field_name_for(label: str) -> str:
    """The storage key derived from a label: "Insurance plan" -> "insurance_plan"."""
    name = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")
    if name and not name[0].isalpha():
        name = "f_" + name
    return name[:63]


def list_fields(scope: Scope, *, include_inactive: bool = False, session: Session | None = None) -> list[FieldDef]:
    """The organisation's fields in display order (active only unless asked)."""
    scope.require_admin()
    query = select(CustomField).where(CustomField.tenant_id == scope.tenant_id)
    if not include_inactive:
        query = query.where(CustomField.is_active)
    with use_session(session) as s:
        rows = s.exec(query.order_by(CustomField.display_order, CustomField.field_label)).all()
        return [_def(r) for r in rows]


def _clean_choices(field_type: str, choices: Any) -> tuple[list[str], str | None]:
    if field_type != "select":
        return [], None
    if isinstance(choices, str):
        choices = [c for c in re.split(r"[\n,]", choices)]
    cleaned: list[str] = []
    for choice in choices or []:
        text = str(choice).strip()
        if not text:
            continue
        if len(text) > 100:
            return [], f"Choices are at most 100 characters (“{text[:30]}…” is longer)."
        if text.lower() in (c.lower() for c in cleaned):
            return [], f"The choice “{text}” is listed twice."
        cleaned.append(text)
    if not cleaned:
        return [], "A choice list needs at least one choice (one per line or comma-separated)."
    if len(cleaned) > MAX_CHOICES:
        return [], f"A choice list has at most {MAX_CHOICES} choices."
    return cleaned, None


def _parse_order(value: Any) -> tuple[int, str | None]:
    if value in (None, ""):
        return 0, None
    try:
        order = int(str(value).strip())
    except ValueError:
        return 0, "Display order must be a whole number."
    if not -1000 <= order <= 1000:
        return 0, "Display order must be between -1000 and 1000."
    return order, None


def _clean_definition(label: Any, field_type: str, choices: Any, order: Any) -> tuple[str, list[str], int]:
    """(label, choices, display order) of a field definition, or ValidationFailed naming each problem."""
    errors: dict[str, str] = {}
    label_text, problem = clean_text(label, max_length=120, label="Label", required=True)
    if problem:
        errors["label"] = problem
    clean_choices, problem = _clean_choices(field_type, choices)
    if problem:
        errors["choices"] = problem
    display_order, problem = _parse_order(order)
    if problem:
        errors["order"] = problem
    if errors:
        raise ValidationFailed(errors)
    return label_text, clean_choices, display_order


def create_field(
    scope: Scope,
    *,
    label: str,
    field_type: str,
    choices: Any = None,
    required: bool = False,
    order: Any = None,
    name: str | None = None,
) -> FieldDef:
    scope.require_admin()
    errors: dict[str, str] = {}
    if field_type not in CUSTOM_FIELD_TYPES:
        errors["field_type"] = f"Choose a field type: {', '.join(TYPE_LABELS.values())}."
    try:
        label_text, clean_choices, display_order = _clean_definition(label, field_type, choices, order)
    except ValidationFailed as exc:
        errors.update(exc.fields)
        label_text = None
    key = (name or "").strip().lower() or field_name_for(label_text or "")
    if label_text and not _NAME_RE.match(key):
        errors["name"] = "The field key must start with a letter and use only a-z, 0-9 and _ (at most 63)."
    if errors:
        raise ValidationFailed(errors)
    with session_scope() as session:
        count = len(list_fields(scope, include_inactive=True, session=session))
        if count >= MAX_FIELDS:
            raise ValidationFailed({"label": f"An organisation can define at most {MAX_FIELDS} custom fields."})
        row = CustomField(
            tenant_id=scope.tenant_id,
            field_name=key,
            field_label=label_text,
            field_type=field_type,
            field_options={"choices": clean_choices} if clean_choices else {},
            is_required=bool(required),
            display_order=display_order,
            created_by_user_id=scope.user_id,
        )
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            raise Conflict(f"A custom field with the key “{key}” already exists. Choose another label.") from None
        return _def(row)


def _get(session: Session, scope: Scope, field_id: str) -> CustomField:
    return owned_row(session, scope, CustomField, field_id, "That custom field does not exist.")


def update_field(
    scope: Scope, field_id: str, *, label: str, choices: Any = None, required: bool = False, order: Any = None
) -> FieldDef:
    """Change a field's label, choices, required flag or order. Its key and type stay: stored values depend on them."""
    scope.require_admin()
    with session_scope() as session:
        row = _get(session, scope, field_id)
        label_text, clean_choices, display_order = _clean_definition(label, row.field_type, choices, order)
        row.field_label = label_text
        row.field_options = {"choices": clean_choices} if clean_choices else {}
        row.is_required = bool(required)
        row.display_order = display_order
        session.add(row)
        session.flush()
        return _def(row)


def set_active(scope: Scope, field_id: str, active: bool) -> FieldDef:
    scope.require_admin()
    with session_scope() as session:
        row = _get(session, scope, field_id)
        row.is_active = bool(active)
        session.add(row)
        session.flush()
        return _def(row)


# --- values ------------------------------------------------------------------------------------------------


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def coerce_value(definition: FieldDef, value: Any) -> tuple[Any, str | None]:
    """(JSON value, problem) for one raw value (a form string, a JSON value from the API, or a CSV cell)."""
    label = definition.label
    kind = definition.type
    if kind == "boolean":
        if isinstance(value, bool):
            return value, None
        text = str(value).strip().lower()
        if text in _TRUE:
            return True, None
        if text in _FALSE:
            return False, None
        return None, f"{label} must be yes or no."
    if kind == "number":
        if isinstance(value, bool):
            return None, f"{label} must be a number."
        try:
            number = Decimal(str(value).strip().replace(",", ""))
        except InvalidOperation:
            return None, f"{label} must be a number (got “{str(value)[:40]}”)."
        if not number.is_finite() or abs(number) >= Decimal("1e15"):
            return None, f"{label} must be a number below 10^15."
        return (int(number) if number == number.to_integral_value() else float(number)), None
    text = str(value).strip()
    if kind == "date":
        try:
            return date.fromisoformat(text).isoformat(), None
        except ValueError:
            try:
                return datetime.fromisoformat(text).date().isoformat(), None
            except ValueError:
                return None, f"{label} must be a date like 2026-03-31 (got “{text[:40]}”)."
    if kind == "email":
        problem = email_problem(text)
        return (None, f"{label}: {problem}") if problem else (text, None)
    if kind == "phone":
        return (text, None) if normalise_phone(text) else (None, f"{label} must be a phone number (got “{text[:40]}”).")
    if kind == "select":
        choice = definition.choice_lookup.get(text.lower())
        if choice is not None:
            return choice, None
        return None, f"{label} must be one of: {', '.join(definition.choices)}."
    if len(text) > MAX_TEXT_VALUE:
        return None, f"{label} is at most {MAX_TEXT_VALUE} characters (got {len(text)})."
    return text, None


def validate_values(
    definitions: list[FieldDef], raw: dict[str, Any], existing: dict[str, Any] | None = None, *, partial: bool = False
) -> dict[str, Any]:
    """The contact's new custom_fields: `existing` with `raw` applied, checked against the active fields.

    Values of inactive fields are kept as they are. A blank value clears an optional field. With `partial`
    (API PATCH), fields absent from `raw` keep their values and are not checked for being required.
    Raises ValidationFailed with one message per field (keyed ``custom_fields.<name>``).
    """
    active = {d.name: d for d in definitions if d.active}
    inactive = {d.name for d in definitions if not d.active}
    result = dict(existing or {})
    errors: dict[str, str] = {}
    for key in raw:
        if key not in active:
            if key in inactive:
                errors[f"custom_fields.{key}"] = f"The custom field “{key}” is deactivated and cannot be changed."
            else:
                errors[f"custom_fields.{key}"] = f"There is no custom field “{key}” in your organisation."
    for name, definition in active.items():
        if name not in raw:
            if not partial and definition.required and _is_blank(result.get(name)):
                errors[f"custom_fields.{name}"] = f"{definition.label} is required."
            continue
        value = raw[name]
        if _is_blank(value):
            if definition.required:
                errors[f"custom_fields.{name}"] = f"{definition.label} is required."
            result.pop(name, None)
            continue
        coerced, problem = coerce_value(definition, value)
        if problem:
            errors[f"custom_fields.{name}"] = problem
        else:
            result[name] = coerced
    if errors:
        raise ValidationFailed(errors)
    return result


def display_value(definition: FieldDef, value: Any) -> str:
    if value is None:
        return ""
    if definition.type == "boolean":
        return "Yes" if value else "No"
    if definition.type == "number" and isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if definition.type == "number":
        return f"{value:,}"
    return str(value)
