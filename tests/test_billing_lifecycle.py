"""An organisation's plan from sign-up to paid, against the fake Stripe over real HTTP, with its signed webhooks
delivered to the app: Checkout (the hosted page's button) -> trialing -> renewal -> cancel at period end ->
reactivate -> a failed payment (banner message, mail to the admins) -> paid again (banner gone) -> cancelled at
period end. Also: admins only, one organisation never reads or changes another's plan, and without keys the
product says plainly that Stripe is not configured."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlmodel import select

from app.integrations import stripe_billing
from app.jobs.runner import Runner
from app.services.accounts.scope import Scope
from app.services.billing import stripe_mirror, subscriptions
from app.services.errors import Conflict, NotFound, PermissionDenied
from models import Job, OutboxMessage, StripeEvent, StripeInvoice, StripeSubscription
from models.db import read_session


def pay_checkout(fake, scope) -> str:
    """Start Checkout as the admin, click "Pay and subscribe" on the hosted page; the customer id."""
    url = subscriptions.start_checkout(scope)
    page = httpx.get(url)
    assert page.status_code == 200 and "Pay and subscribe" in page.text
    answer = httpx.post(url, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("http://localhost:3000/billing?checkout=done&session_id=cs_test_")
    fake.wait_delivered()
    with read_session() as session:
        return stripe_mirror.customer_of_tenant(session, scope.tenant_id).stripe_customer_id


def run_jobs() -> None:
    """Run the queued jobs (the dunning mail) to the end, as the app's job runner would."""
    asyncio.run(Runner(poll_seconds=0.05, heartbeat_seconds=0.2, schedule=False).run_until_idle(timeout=60))


def billing_mail(tenant_id) -> list[OutboxMessage]:
    run_jobs()
    with read_session() as session:
        return list(
            session.exec(
                select(OutboxMessage).where(OutboxMessage.tenant_id == tenant_id, OutboxMessage.kind == "billing")
            ).all()
        )


def test_lifecycle_from_checkout_to_paid(fake_stripe, make_org, make_user):
    admin = make_org("Acme Dental", email="owner@acme.example")
    scope = admin.scope
    second_admin = make_user(admin.tenant_id, role="admin", email="second@acme.example")
    make_user(admin.tenant_id, role="member", email="member@acme.example")

    before = subscriptions.subscription_view(scope)
    assert before.status == "none" and before.can_subscribe and before.payment_problem is None

    # a second click on "Subscribe" gets the same Checkout, not a second one
    first_url = subscriptions.start_checkout(scope)
    assert subscriptions.start_checkout(scope) == first_url
    assert len(fake_stripe.checkout_sessions) == 1 and len(fake_stripe.customers) == 1

    customer_id = pay_checkout(fake_stripe, scope)
    view = subscriptions.subscription_view(scope)
    assert view.status == "trialing" and view.status_label == "Free trial"
    assert view.trial_end is not None
    assert abs(view.trial_end - (datetime.now(UTC) + timedelta(days=14))) < timedelta(minutes=5)
    assert view.next_renewal == view.trial_end
    assert not view.cancel_at_period_end and not view.can_subscribe
    assert fake_stripe.customers[customer_id]["metadata"] == {"tenant_id": str(admin.tenant_id)}
    with pytest.raises(Conflict):
        subscriptions.start_checkout(scope)

    # the trial ends: the first paid period starts, its invoice is paid
    fake_stripe.advance(days=15)
    fake_stripe.wait_delivered()
    view = subscriptions.subscription_view(scope)
    assert view.status == "active" and view.trial_end is None
    sub = fake_stripe.subscriptions[view.stripe_subscription_id]
    assert view.next_renewal == stripe_billing.timestamp(sub["items"]["data"][0]["current_period_end"])
    assert view.next_renewal > datetime.now(UTC) + timedelta(days=40)  # trial end + one month
    with read_session() as session:
        paid = session.exec(
            select(StripeInvoice).where(StripeInvoice.tenant_id == admin.tenant_id, StripeInvoice.amount_paid_cents > 0)
        ).all()
    assert [(i.status, i.amount_paid_cents) for i in paid] == [("paid", 29900)]
    assert "VoiceDesk plan" in httpx.get(paid[0].hosted_invoice_url).text
    assert httpx.get(paid[0].invoice_pdf).headers["content-type"] == "application/pdf"

    # cancel at period end, then change one's mind
    view = subscriptions.cancel_at_period_end(scope)
    assert view.cancel_at_period_end and view.status == "active"
    assert fake_stripe.subscriptions[view.stripe_subscription_id]["cancel_at_period_end"] is True
    fake_stripe.wait_delivered()
    assert subscriptions.subscription_view(scope).cancel_at_period_end
    view = subscriptions.reactivate(scope)
    assert not view.cancel_at_period_end
    fake_stripe.wait_delivered()
    assert fake_stripe.subscriptions[view.stripe_subscription_id]["cancel_at_period_end"] is False
    assert not subscriptions.subscription_view(scope).cancel_at_period_end

    # the card starts failing: the next renewal's payment fails
    fake_stripe.set_payments(customer_id, fail=True)
    fake_stripe.advance(days=31)
    fake_stripe.wait_delivered()
    problem = subscriptions.payment_problem(admin.tenant_id)
    assert problem is not None and "$299.00" in problem and "failed" in problem
    assert "Billing page" in problem
    assert subscriptions.subscription_view(scope).status == "past_due"
    mails = billing_mail(admin.tenant_id)
    assert sorted(m.to_email for m in mails) == ["owner@acme.example", second_admin.email]
    assert all("Payment failed" in m.subject and "$299.00" in m.text for m in mails)

    # the card works again: Stripe's retry pays the invoice and the banner goes
    fake_stripe.set_payments(customer_id, fail=False)
    fake_stripe.wait_delivered()
    assert subscriptions.payment_problem(admin.tenant_id) is None
    assert subscriptions.subscription_view(scope).status == "active"
    assert len(billing_mail(admin.tenant_id)) == 2  # no more mail

    # cancelled at period end: the plan ends when the period does, and can be taken again
    subscriptions.cancel_at_period_end(scope)
    fake_stripe.advance(days=32)
    fake_stripe.wait_delivered()
    view = subscriptions.subscription_view(scope)
    assert view.status == "canceled" and view.can_subscribe and view.next_renewal is None
    with pytest.raises(NotFound):
        subscriptions.cancel_at_period_end(scope)

    # every event the fake sent was stored once and applied without error
    with read_session() as session:
        stored = session.exec(select(StripeEvent)).all()
    sent = {e["id"] for e in fake_stripe.events}
    assert {e.id for e in stored} == sent
    assert all(e.processed_at is not None for e in stored)
    assert {d["status"] for d in fake_stripe.deliveries} == {200}


def test_the_customer_portal_link_opens_the_organisations_own_portal(fake_stripe, make_org):
    admin = make_org()
    with pytest.raises(NotFound):
        subscriptions.portal_link(admin.scope)  # nothing to manage before subscribing
    customer_id = pay_checkout(fake_stripe, admin.scope)
    url = subscriptions.portal_link(admin.scope)
    portal = fake_stripe.portal_sessions[url.rsplit("/", 1)[1]]
    assert portal["customer"] == customer_id and portal["return_url"] == "http://localhost:3000/billing"
    page = httpx.get(url)
    assert "Cancel plan" in page.text and "Return to VoiceDesk" in page.text

    # cancelling in the portal reaches the app through the webhook
    sub_id = subscriptions.subscription_view(admin.scope).stripe_subscription_id
    httpx.post(f"{url}/subscriptions/{sub_id}/cancel")
    fake_stripe.wait_delivered()
    assert subscriptions.subscription_view(admin.scope).cancel_at_period_end


def test_only_admins_act_on_the_plan(fake_stripe, make_org, make_user):
    admin = make_org()
    member = make_user(admin.tenant_id, role="member")
    for action in (
        subscriptions.start_checkout,
        subscriptions.cancel_at_period_end,
        subscriptions.reactivate,
        subscriptions.portal_link,
        subscriptions.subscription_view,
    ):
        with pytest.raises(PermissionDenied):
            action(member.scope)
    assert fake_stripe.stats()["customers"] == 0


def test_organisations_never_see_or_change_each_others_plan(fake_stripe, make_org):
    acme = make_org("Acme Dental")
    globex = make_org("Globex Clinic")
    acme_customer = pay_checkout(fake_stripe, acme.scope)
    globex_customer = pay_checkout(fake_stripe, globex.scope)
    assert acme_customer != globex_customer

    acme_view = subscriptions.subscription_view(acme.scope)
    globex_view = subscriptions.subscription_view(globex.scope)
    assert acme_view.stripe_subscription_id != globex_view.stripe_subscription_id
    assert fake_stripe.subscriptions[acme_view.stripe_subscription_id]["customer"] == acme_customer

    # Acme cancelling touches Acme's subscription only
    subscriptions.cancel_at_period_end(acme.scope)
    fake_stripe.wait_delivered()
    assert fake_stripe.subscriptions[globex_view.stripe_subscription_id]["cancel_at_period_end"] is False
    assert not subscriptions.subscription_view(globex.scope).cancel_at_period_end

    # Acme's failed payment is Acme's problem only, and only Acme's admins hear of it
    fake_stripe.set_payments(acme_customer, fail=True)
    subscriptions.reactivate(acme.scope)
    fake_stripe.advance(days=15)
    fake_stripe.wait_delivered()
    assert subscriptions.payment_problem(acme.tenant_id) is not None
    assert subscriptions.payment_problem(globex.tenant_id) is None
    assert billing_mail(globex.tenant_id) == [] and len(billing_mail(acme.tenant_id)) == 1

    # each organisation's mirror holds its own rows only
    with read_session() as session:
        for principal, customer in ((acme, acme_customer), (globex, globex_customer)):
            subs = session.exec(
                select(StripeSubscription).where(StripeSubscription.tenant_id == principal.tenant_id)
            ).all()
            invoices = session.exec(select(StripeInvoice).where(StripeInvoice.tenant_id == principal.tenant_id)).all()
            assert {s.stripe_customer_id for s in subs} == {customer}
            assert invoices and {i.stripe_customer_id for i in invoices} == {customer}


def test_without_keys_billing_says_stripe_is_not_configured(make_org, monkeypatch):
    admin = make_org()
    view = subscriptions.subscription_view(admin.scope)
    assert not view.configured and view.status == "none" and not view.can_subscribe
    with pytest.raises(subscriptions.BillingNotConfigured, match="Stripe is not configured"):
        subscriptions.start_checkout(admin.scope)
    with pytest.raises(stripe_billing.StripeNotConfigured, match="Stripe is not configured"):
        stripe_billing.retrieve_customer("cus_anything")


def test_an_expired_checkout_is_replaced_and_a_finished_one_is_not_reopened(fake_stripe, make_org):
    admin = make_org()
    first = subscriptions.start_checkout(admin.scope)
    fake_stripe.advance(days=1, seconds=60)  # Stripe expires an unused session after 24 hours
    second = subscriptions.start_checkout(admin.scope)
    assert second != first
    assert "expired" in httpx.get(first).text
    assert subscriptions.start_checkout(admin.scope) == second
    # paid, but its webhook not applied yet: the admin is told, no other Checkout is opened
    fake_stripe.configure(hold=True)
    assert httpx.post(second, follow_redirects=False).status_code == 303
    with pytest.raises(Conflict, match="already finished"):
        subscriptions.start_checkout(admin.scope)
    assert len(fake_stripe.checkout_sessions) == 2


def test_no_payment_failed_mail_once_the_invoice_is_paid(fake_stripe, make_org):
    admin = make_org()
    customer_id = pay_checkout(fake_stripe, admin.scope)
    fake_stripe.set_payments(customer_id, fail=True)
    fake_stripe.advance(days=15)
    fake_stripe.wait_delivered()  # the mail job is queued ...
    fake_stripe.set_payments(customer_id, fail=False)
    fake_stripe.wait_delivered()  # ... but the invoice is paid before it runs
    assert billing_mail(admin.tenant_id) == []
    assert subscriptions.payment_problem(admin.tenant_id) is None


def test_the_payment_failed_mail_waits_out_a_sendgrid_outage(fake_stripe, fake_sendgrid, make_org):
    admin = make_org(email="owner@acme.example")
    customer_id = pay_checkout(fake_stripe, admin.scope)
    fake_stripe.set_payments(customer_id, fail=True)
    fake_sendgrid.fail_next(503, times=5)  # more than one attempt's worth of retries
    fake_stripe.advance(days=15)
    fake_stripe.wait_delivered()
    runner = Runner(poll_seconds=0.05, heartbeat_seconds=0.2, retry_base_seconds=0.05, schedule=False)
    for _ in range(100):  # the first attempt gives up; the job's retry, due a moment later, gets through
        asyncio.run(runner.run_until_idle(timeout=120))
        if fake_sendgrid.delivered("owner@acme.example"):
            break
        time.sleep(0.05)
    assert fake_sendgrid.delivered("owner@acme.example") == 1
    with read_session() as session:
        job = session.exec(select(Job).where(Job.kind == "billing_dunning_mail")).one()
    assert job.status == "succeeded" and job.attempts == 2
    message = fake_sendgrid.messages[0]
    assert "Payment failed" in message["subject"] and message["custom_args"]["kind"] == "billing"


def test_the_platforms_crm_follows_the_plan_through_the_webhook(fake_stripe, make_org):
    import uuid

    from app.services import organisations
    from models import Contact, Tenant
    from models.db import session_scope

    with session_scope() as session:
        platform = organisations.platform_organisation(session).id  # the super admins' own organisation
    with pytest.raises(Conflict, match="never billed"):
        subscriptions.start_checkout(Scope(tenant_id=platform, role="super_admin"))
    admin = make_org("Harbor Smiles")

    def contact() -> Contact:
        with read_session() as session:
            contact_id = session.get(Tenant, admin.tenant_id).settings["platform_contact_id"]
            return session.get(Contact, uuid.UUID(contact_id))

    assert contact().status == "lead" and contact().stripe_customer_id is None
    customer_id = pay_checkout(fake_stripe, admin.scope)
    assert (contact().status, contact().stripe_customer_id) == ("customer", customer_id)
    subscriptions.cancel_at_period_end(admin.scope)
    fake_stripe.advance(days=15)
    fake_stripe.wait_delivered()
    assert subscriptions.subscription_view(admin.scope).status == "canceled"
    assert contact().status == "inactive"
