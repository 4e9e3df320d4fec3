"""SQLModel tables for the whole platform, plus engine/session helpers. Imports no Reflex.

Importing this package registers every table on ``SQLModel.metadata``, which is what ``reflex db`` migrates.
"""

from models.agents import ChatConversation, ChatMessage, Specialist
from models.billing import BillingPeriod, BillingRun, StripeCustomer, StripeEvent, StripeInvoice, StripeSubscription
from models.crm import Contact, ContactInteraction, ContactStat, CustomField, ImportMapping
from models.email import (
    CampaignLink,
    EmailBatch,
    EmailCampaign,
    EmailEvent,
    EmailRecipient,
    EmailSuppression,
    EmailTemplate,
    EmailWebhookEvent,
    OutboxMessage,
    SenderIdentity,
)
from models.email_analytics import EmailActivityHourly
from models.jobs import ImportJob, ImportRowError, Job
from models.rate_limits import RateLimit
from models.tenancy import LoginAttempt, Tenant, User, UserSession
from models.voice import CallConsultation, CallSession, CallTranscriptLine, PhoneNumber, UsageRecord, VoiceSettings

__all__ = [
    "BillingPeriod",
    "BillingRun",
    "CallConsultation",
    "CallSession",
    "CallTranscriptLine",
    "CampaignLink",
    "ChatConversation",
    "ChatMessage",
    "Contact",
    "ContactInteraction",
    "ContactStat",
    "CustomField",
    "EmailActivityHourly",
    "EmailBatch",
    "EmailCampaign",
    "EmailEvent",
    "EmailRecipient",
    "EmailSuppression",
    "EmailTemplate",
    "EmailWebhookEvent",
    "ImportJob",
    "ImportMapping",
    "ImportRowError",
    "Job",
    "OutboxMessage",
    "LoginAttempt",
    "PhoneNumber",
    "RateLimit",
    "SenderIdentity",
    "Specialist",
    "StripeCustomer",
    "StripeEvent",
    "StripeInvoice",
    "StripeSubscription",
    "Tenant",
    "UsageRecord",
    "User",
    "UserSession",
    "VoiceSettings",
]
