"""The List-Unsubscribe mailto is processed: mail to `unsubscribe+<token>@domain`, sent with a real
SMTP client to comms' inbound SMTP server (or, in development, the mail catcher), unsubscribes
that recipient from the message's category; a forged token or another address changes nothing."""

from __future__ import annotations

import re
import uuid
from email.message import EmailMessage

import aiosmtplib
import pytest
from givance.comms.v1 import message_pb2, template_pb2
from givance.comms.v1 import message_service_pb2 as mpb
from givance.comms.v1 import suppression_service_pb2 as xpb
from givance.comms.v1 import template_service_pb2 as tpb

from tests.helpers import eventually


@pytest.fixture
async def inbound_port(comms_host):
    inbound = next(w for w in comms_host.workers if type(w).__name__ == "InboundSmtp")
    await eventually(lambda: inbound.port > 0)
    return inbound.port


async def _newsletter(stubs, tenant, mailbox):
    name = f"mt-{uuid.uuid4().hex[:6]}"
    await stubs.templates.CreateTemplate(tpb.CreateTemplateRequest(template=template_pb2.Template(
        name=name, category="newsletters", subject="Our news", body_text="News", body_html="<p>News</p>")),
        metadata=tenant.md)
    to = f"mailto-{uuid.uuid4().hex[:8]}@example.org"
    await stubs.messages.SendMessage(mpb.SendMessageRequest(to_address=to, template_name=name), metadata=tenant.md)
    (mail,) = await mailbox.wait_for(to)
    mailto = re.search(r"<mailto:([^?>]+)(\?[^>]*)?>", mail["List-Unsubscribe"]).group(1)
    return name, to, mailto


def _request(sender: str, to: str) -> EmailMessage:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, to, "unsubscribe"
    m.set_content("unsubscribe")
    return m


async def _history(stubs, tenant, to):
    return (await stubs.suppressions.ListConsentChanges(xpb.ListConsentChangesRequest(address=to),
                                                        metadata=tenant.md)).changes


async def test_mail_to_the_unsubscribe_address_unsubscribes(stubs, tenant, mailbox, inbound_port):
    name, to, mailto = await _newsletter(stubs, tenant, mailbox)
    local, domain = mailto.split("@")
    assert local.startswith("unsubscribe+") and local == local.lower()

    # forged: another message's token shape, a flipped character, or not an unsubscribe address
    token = local.removeprefix("unsubscribe+")
    forged = f"unsubscribe+{token[:-5]}{'a' if token[-5] != 'a' else 'b'}{token[-4:]}@{domain}"
    await aiosmtplib.send(_request(to, forged), hostname="127.0.0.1", port=inbound_port)
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await aiosmtplib.send(_request(to, f"someone@{domain}"), hostname="127.0.0.1", port=inbound_port)
    assert not await _history(stubs, tenant, to)

    # the real address, in whatever case the client's server kept it
    await aiosmtplib.send(_request(to, f"{local.upper()}@{domain}"), hostname="127.0.0.1", port=inbound_port)
    (change,) = await eventually(lambda: _history(stubs, tenant, to))
    assert (change.category, change.granted, change.source) == ("newsletters", False, "mailto")
    skipped = (await stubs.messages.SendMessage(mpb.SendMessageRequest(to_address=to, template_name=name),
                                                metadata=tenant.md)).message
    assert skipped.status == message_pb2.MESSAGE_STATUS_SUPPRESSED


async def test_the_development_catcher_hands_unsubscribe_mail_to_comms(stubs, tenant, mailbox, mail_catcher):
    _, to, mailto = await _newsletter(stubs, tenant, mailbox)
    await aiosmtplib.send(_request(to, mailto), hostname="127.0.0.1", port=mail_catcher.port)
    (change,) = await eventually(lambda: _history(stubs, tenant, to))
    assert (change.granted, change.source) == (False, "mailto")
    assert mailbox.to(mailto)  # and the catcher kept it, as every mail
