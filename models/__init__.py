"""SQLModel tables for the whole platform, plus engine/session helpers. Imports no Reflex.

Importing this package registers every table on ``SQLModel.metadata``, which is what ``reflex db`` migrates.
"""

from models.agents import ChatConversation, ChatMessage, Specialist
from models.billing import BillingRun, StripeCustomer, StripeEvent, StripeInvoice, StripeSubscription
from models.crm import Contact, ContactInteraction, ContactStat, CustomField, ImportMapping
from models.email import CampaignLink, EmailCampaign, EmailEvent, EmailRecipient, EmailTemplate
from models.jobs import ImportJob, ImportRowError, Job
from models.rate_limits import RateLimit
from models.tenancy import LoginAttempt, Tenant, User, UserSession
from models.voice import CallSession, CallTranscriptLine, PhoneNumber, UsageRecord, VoiceSettings

__all__ = [
    "BillingRun",
    "CallSession",
    "CallTranscriptLine",
    "CampaignLink",
    "ChatConversation",
    "ChatMessage",
    "Contact",
    "ContactInteraction",
    "ContactStat",
    "CustomField",
    "EmailCampaign",
    "EmailEvent",
    "EmailRecipient",
    "EmailTemplate",
    "ImportJob",
    "ImportMapping",
    "ImportRowError",
    "Job",
    "LoginAttempt",
    "PhoneNumber",
    "RateLimit",
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
