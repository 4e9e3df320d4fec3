"""CRM: contacts, their interaction timeline and per-organisation custom fields."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Column, Computed, Date, Index, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR, UUID
from sqlmodel import Field, SQLModel

from models.base import default_now, fk, flag, json_dict, tenant_fk, timestamp, uuid_pk

CONTACT_STATUSES = ("lead", "prospect", "qualified", "customer", "closed_won", "closed_lost", "inactive")
INTERACTION_TYPES = ("phone_call", "email", "meeting", "note", "task", "follow_up")
CUSTOM_FIELD_TYPES = ("text", "number", "date", "email", "phone", "select", "boolean")

# The search document: business and person names, plus the phone number's first six national digits and its
# last four (people search "…0134"; a longer prefix of the number is found through its first six and checked on
# the candidates, see contacts._search_condition; an incoming call finds its contact the same way, see
# call_records.contact_for_number). Emails are matched by prefix on the unique email index instead. This keeps
# the index small and cheap to insert into: every lexeme is paid for on each insert, a unique one (a whole phone
# number) most of all, and imports insert a million rows.
# Names made only of ASCII letters, digits and spaces (most of them) are split on spaces and lower-cased, which
# gives exactly the lexemes to_tsvector's parser would (tests/test_crm.py checks it) at a third of its cost; the
# parser handles everything else (punctuation, accents) and digit-e-digit runs, which it reads as numbers.
_NAMES = "coalesce(business_name, '') || ' ' || coalesce(contact_name, '')"
_SEARCH_TEXT = (
    f"{_NAMES} || ' ' || left(right(translate(coalesce(phone_normalized, ''), '+', ''), 10), 6) || ' ' || "
    "right(translate(coalesce(phone_normalized, ''), '+', ''), 4)"
)
SEARCH_DOCUMENT = (
    f"CASE WHEN {_NAMES} ~ '^[A-Za-z0-9 ]*$' AND {_NAMES} !~ '[0-9][eE][0-9]' "
    f"THEN array_to_tsvector(array_remove(string_to_array(lower({_SEARCH_TEXT}), ' '), '')) "
    f"ELSE to_tsvector('simple'::regconfig, {_SEARCH_TEXT}) END"
)


class Contact(SQLModel, table=True):
    __tablename__ = "contacts"
    __table_args__ = (
        # The duplicate rule: one contact per normalised email per organisation (NULL emails are allowed).
        UniqueConstraint("tenant_id", "email_normalized", name="uq_contacts_tenant_email"),
        Index("ix_contacts_tenant_status_created", "tenant_id", "status", "created_at"),
        Index("ix_contacts_tenant_created", "tenant_id", "created_at"),
        # Page orderings that must stay index-driven at a million contacts.
        Index("ix_contacts_tenant_business", "tenant_id", "business_name"),
        Index("ix_contacts_tenant_last_interaction", "tenant_id", text("last_interaction_at DESC NULLS LAST")),
        Index("ix_contacts_search", "search_vector", postgresql_using="gin"),
        CheckConstraint(f"status IN {CONTACT_STATUSES!r}", name="ck_contacts_status"),
    )

    id: uuid.UUID = uuid_pk()
    # No FOREIGN KEY constraints on tenant_id and created_by_user_id: checked per row they cost a query per
    # inserted contact (a sixth of a bulk import). Triggers keep the same guarantees once per statement (see the
    # migration fa7a59730ff3): inserts must name an existing organisation and user, deleting an organisation
    # deletes its contacts, deleting a user clears created_by_user_id.
    tenant_id: uuid.UUID = Field(sa_type=UUID(as_uuid=True), nullable=False)
    business_name: str = Field(max_length=255)
    contact_name: str = Field(max_length=255)
    contact_email: str | None = Field(default=None, max_length=320)
    # Normalised keys use the "C" collation so `LIKE 'prefix%'` can use their btree indexes on any server.
    email_normalized: str | None = Field(default=None, sa_type=String(320, collation="C"))
    contact_role: str | None = Field(default=None, max_length=255)
    phone: str | None = Field(default=None, max_length=64)
    # Digits with a leading + (E.164 when possible): how an incoming call finds its contact.
    phone_normalized: str | None = Field(default=None, sa_type=String(32, collation="C"))
    website: str | None = Field(default=None, max_length=500)
    address: str | None = Field(default=None, sa_type=Text)
    city: str | None = Field(default=None, max_length=120)
    state: str | None = Field(default=None, max_length=120)
    notes: str | None = Field(default=None, sa_type=Text)
    status: str = Field(default="lead", max_length=20, sa_column_kwargs={"server_default": text("'lead'")})
    custom_fields: dict[str, Any] = json_dict()
    stripe_customer_id: str | None = Field(default=None, max_length=255)
    unsubscribed: bool = flag(False)
    bounced: bool = flag(False)
    created_by_user_id: uuid.UUID | None = Field(default=None, sa_type=UUID(as_uuid=True))
    created_at: datetime = default_now()
    updated_at: datetime | None = timestamp()
    last_interaction_at: datetime | None = timestamp()
    search_vector: Any = Field(
        default=None, sa_column=Column(TSVECTOR, Computed(SEARCH_DOCUMENT, persisted=True), nullable=True)
    )


class ContactStat(SQLModel, table=True):
    """Contacts per (organisation, UTC day created, status), kept by statement triggers on `contacts`.

    The CRM dashboard and the home page read totals and weekly growth from here in constant time instead of
    counting a million rows; the triggers (see the migration) aggregate each statement's rows once, so a bulk
    import costs one upsert per (day, status) it touches.
    """

    __tablename__ = "contact_stats"

    tenant_id: uuid.UUID = Field(
        primary_key=True, sa_type=UUID(as_uuid=True), foreign_key="tenants.id", ondelete="CASCADE"
    )
    day: date = Field(primary_key=True, sa_type=Date)
    status: str = Field(primary_key=True, max_length=20)
    n: int = Field(default=0, sa_type=BigInteger, nullable=False)


class ContactInteraction(SQLModel, table=True):
    __tablename__ = "contact_interactions"
    __table_args__ = (
        Index("ix_interactions_contact_date", "contact_id", "interaction_date"),
        Index("ix_interactions_tenant_date", "tenant_id", "interaction_date"),
        # Open tasks and follow-ups by due date (the dashboard's "upcoming follow-ups").
        Index(
            "ix_interactions_open_due",
            "tenant_id",
            "due_at",
            postgresql_where=text("due_at IS NOT NULL AND completed_at IS NULL"),
        ),
        CheckConstraint(f"interaction_type IN {INTERACTION_TYPES!r}", name="ck_interactions_type"),
    )

    id: uuid.UUID = uuid_pk()
    tenant_id: uuid.UUID = tenant_fk(index=False)
    contact_id: uuid.UUID = fk("contacts.id", nullable=False, ondelete="CASCADE")
    user_id: uuid.UUID | None = fk("users.id")
    interaction_type: str = Field(max_length=20)
    subject: str | None = Field(default=None, max_length=255)
    content: str = Field(sa_type=Text)
    interaction_date: datetime = timestamp(nullable=False)
    # "metadata" is reserved on SQLModel classes, so the attribute is `meta`.
    meta: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    )
    due_at: datetime | None = timestamp()
    completed_at: datetime | None = timestamp()
    created_at: datetime = default_now()
    updated_at: datetime | None = timestamp()


class CustomField(SQLModel, table=True):
    __tablename__ = "custom_fields"
    __table_args__ = (
        UniqueConstraint("tenant_id", "field_name", name="uq_custom_fields_tenant_name"),
        CheckConstraint(f"field_type IN {CUSTOM_FIELD_TYPES!r}", name="ck_custom_fields_type"),
    )

    id: uuid.UUID = uuid_pk()
    tenant_id: uuid.UUID = tenant_fk()
    field_name: str = Field(max_length=64)
    field_label: str = Field(max_length=120)
    field_type: str = Field(max_length=20)
    # e.g. {"choices": ["Gold", "Silver"]} for select fields.
    field_options: dict[str, Any] = json_dict()
    is_required: bool = flag(False)
    display_order: int = Field(default=0, nullable=False, sa_column_kwargs={"server_default": text("0")})
    is_active: bool = flag(True)
    created_by_user_id: uuid.UUID | None = fk("users.id")
    created_at: datetime = default_now()


class ImportMapping(SQLModel, table=True):
    """A saved CSV column mapping, reusable for the next import."""

    __tablename__ = "import_mappings"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_import_mappings_tenant_name"),)

    id: uuid.UUID = uuid_pk()
    tenant_id: uuid.UUID = tenant_fk()
    name: str = Field(max_length=120)
    mapping: dict[str, Any] = json_dict()
    created_at: datetime = default_now()
