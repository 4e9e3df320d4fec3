"""Campaign tokens: the sender's fast signer makes exactly the tokens the readers accept; one recipient token serves
the pixel and the unsubscribe link; tokens in mail sent before (an open token, an unsubscribe token) still read;
no token passes for another kind, and no altered one reads at all."""

from __future__ import annotations

import uuid

from app.services.mail import tracking_tokens
from app.services.mail.tracking_tokens import read_click, read_open, read_unsubscribe, read_unsubscribe_of_test


def test_the_fast_signer_makes_the_tokens_the_readers_accept():
    key = tracking_tokens.signing_key()
    click, recipient = tracking_tokens.signer(key)
    tracking_id, link_id = uuid.uuid4(), uuid.uuid4()
    token = recipient(tracking_id.bytes)
    assert token == tracking_tokens.recipient_token(tracking_id)
    assert read_open(token) == tracking_id and read_unsubscribe(token) == tracking_id
    link_token = click(tracking_id.bytes, link_id.bytes)
    assert link_token == tracking_tokens.click_token(tracking_id, link_id)
    assert read_click(link_token) == (tracking_id, link_id)


def test_tokens_of_mail_sent_before_still_read():
    tracking_id = uuid.uuid4()
    assert read_open(tracking_tokens.sign("open", tracking_id)) == tracking_id
    assert read_unsubscribe(tracking_tokens.sign("unsubscribe", tracking_id)) == tracking_id


def test_no_token_passes_for_another_kind_or_when_altered():
    tracking_id, link_id = uuid.uuid4(), uuid.uuid4()
    recipient = tracking_tokens.recipient_token(tracking_id)
    click = tracking_tokens.click_token(tracking_id, link_id)
    old_open = tracking_tokens.sign("open", tracking_id)
    old_unsubscribe = tracking_tokens.sign("unsubscribe", tracking_id)
    assert read_unsubscribe(old_open) is None and read_open(old_unsubscribe) is None
    assert read_unsubscribe_of_test(recipient) is None
    assert read_click(recipient) is None and read_open(click) is None
    # A click token for another link of the same recipient cannot be made by changing the link's bytes.
    other = tracking_tokens.click_token(tracking_id, uuid.uuid4())
    spliced = click[:43] + other[43:]
    assert read_click(spliced) is None
    assert read_open(recipient[:-2] + ("AA" if recipient[-2:] != "AA" else "BB")) is None
    other_key = tracking_tokens.signer(b"x" * 32)[1](tracking_id.bytes)
    assert read_open(other_key) is None
