"""comms starts with the suite and sends a templated email to an address, through the queue, to the catcher."""

from givance.comms.v1 import message_pb2, template_pb2
from givance.comms.v1 import message_service_pb2 as mpb
from givance.comms.v1 import template_service_pb2 as tpb

from tests.helpers import eventually


async def test_a_template_sent_to_an_address_arrives_as_text_and_html(stubs, tenant, mailbox, comms_http):
    t = (await stubs.templates.CreateTemplate(tpb.CreateTemplateRequest(template=template_pb2.Template(
        name="welcome", category="newsletters", subject="Hello {{ name }}",
        body_text="Hi {{ name }}, see https://example.org/a?b=1&c=2",
        body_html='<p>Hi {{ name }}, <a href="https://example.org/a?b=1&c=2">read</a></p>',
        variables=["name"])), metadata=tenant.md)).template
    assert t.version == 1 and t.etag
    to = "reader@example.org"
    sent = (await stubs.messages.SendMessage(mpb.SendMessageRequest(
        to_address=to, template_name="welcome", variables={"name": "Ada <b>"}), metadata=tenant.md)).message
    assert sent.status == message_pb2.MESSAGE_STATUS_QUEUED
    (mail,) = await mailbox.wait_for(to)
    assert mail["Subject"] == "Hello Ada <b>" and mail["Message-ID"] == sent.rfc822_message_id
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Hi Ada <b>," in text and "Ada &lt;b&gt;" in html
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    async def sent_now():
        m = (await stubs.messages.GetMessage(mpb.GetMessageRequest(id=sent.id), metadata=tenant.md)).message
        return m.status == message_pb2.MESSAGE_STATUS_SENT
    await eventually(sent_now)
