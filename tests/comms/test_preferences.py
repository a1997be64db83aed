"""The preference page every bulk email links to, and double opt-in: GET shows the
organization's categories and changes nothing; POST (with the page's form token, from no foreign
origin) changes them; under double opt-in a grant stays pending until the confirmation is
submitted, recorded with time, source and evidence; every change is kept as history."""

from __future__ import annotations

import re
import uuid

from givance.comms.v1 import message_pb2, settings_pb2, template_pb2
from givance.comms.v1 import message_service_pb2 as mpb
from givance.comms.v1 import settings_service_pb2 as spb
from givance.comms.v1 import suppression_service_pb2 as xpb
from givance.comms.v1 import template_service_pb2 as tpb
from google.protobuf import field_mask_pb2

from tests.helpers import invalid


async def _template(stubs, md, category="newsletters"):
    name = f"pref-{uuid.uuid4().hex[:6]}"
    await stubs.templates.CreateTemplate(tpb.CreateTemplateRequest(template=template_pb2.Template(
        name=name, category=category, subject="Our news", body_text="News",
        body_html="<html><body><p>News</p></body></html>")), metadata=md)
    return name


async def _send(stubs, md, to, name):
    return (await stubs.messages.SendMessage(mpb.SendMessageRequest(to_address=to, template_name=name),
                                             metadata=md)).message


def _form_token(page: str) -> str:
    return re.search(r'name="form" value="([^"]+)"', page).group(1)


async def _history(stubs, md, to):
    return (await stubs.suppressions.ListConsentChanges(xpb.ListConsentChangesRequest(address=to),
                                                        metadata=md)).changes


async def test_the_preference_page_from_any_bulk_email(stubs, tenant, mailbox, comms_http):
    md = tenant.md
    news, appeal = await _template(stubs, md), await _template(stubs, md, "spring-appeal")
    to = f"prefs-{uuid.uuid4().hex[:8]}@example.org"
    await _send(stubs, md, to, news)
    (mail,) = await mailbox.wait_for(to)
    text, html = mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()
    link = re.search(r"Choose what you receive from us: (\S+)", text).group(1)
    path = "/p/" + link.split("/p/", 1)[1]
    assert path in html  # the footer of both parts, not rewritten for click tracking

    page = await comms_http.get(path)
    assert page.status_code == 200 and to in page.text
    boxes = dict(re.findall(r'value="([a-z-]+)"( checked)?>', page.text))
    assert boxes == {"appeals": " checked", "newsletters": " checked", "spring-appeal": " checked",
                     "thank-you": " checked"}
    assert "receipts" not in boxes and not await _history(stubs, md, to)  # a GET changes nothing

    # no form token, a forged one, or a foreign origin: refused, nothing written
    form = _form_token(page.text)
    for data, headers in (({"category": "appeals"}, {}), ({"category": "appeals", "form": form[:-1] + "0"}, {}),
                          ({"category": "appeals", "form": form}, {"origin": "https://evil.example"})):
        assert (await comms_http.post(path, data=data, headers=headers)).status_code == 403
    assert not await _history(stubs, md, to)

    # keep appeals only
    saved = await comms_http.post(path, data={"category": ["appeals"], "form": form})
    assert saved.status_code == 200 and "Saved." in saved.text
    changes = await _history(stubs, md, to)
    assert sorted((c.category, c.granted, c.source) for c in changes) == [
        ("newsletters", False, "preference-page"), ("spring-appeal", False, "preference-page"),
        ("thank-you", False, "preference-page")]
    assert all(c.detail.startswith("ip 127.0.0.1") for c in changes)
    assert (await _send(stubs, md, to, news)).status == message_pb2.MESSAGE_STATUS_SUPPRESSED
    assert (await _send(stubs, md, to, appeal)).status == message_pb2.MESSAGE_STATUS_SUPPRESSED

    # and back: newsletters again
    again = await comms_http.post(path, data={"category": ["appeals", "newsletters"], "form": form})
    assert again.status_code == 200
    assert (await _history(stubs, md, to))[0].granted
    assert (await _send(stubs, md, to, news)).status == message_pb2.MESSAGE_STATUS_QUEUED


async def test_double_opt_in_waits_for_the_confirmation(stubs, tenant, mailbox, comms_http):
    md = tenant.md
    await stubs.comms_settings.UpdateSendingSettings(spb.UpdateSendingSettingsRequest(
        settings=settings_pb2.SendingSettings(double_opt_in=True),
        update_mask=field_mask_pb2.FieldMask(paths=["double_opt_in"])), metadata=md)
    news = await _template(stubs, md)
    to = f"optin-{uuid.uuid4().hex[:8]}@example.org"
    before = await _send(stubs, md, to, news)
    assert before.status == message_pb2.MESSAGE_STATUS_SUPPRESSED and "double opt-in" in before.status_reason

    await invalid(stubs.suppressions.GrantConsent(xpb.GrantConsentRequest(address="not an address",
                                                                          categories=["newsletters"]), metadata=md),
                  "address")
    await invalid(stubs.suppressions.GrantConsent(xpb.GrantConsentRequest(address=to, categories=["receipts"]),
                                                  metadata=md), "categories[0]")
    asked = await stubs.suppressions.GrantConsent(xpb.GrantConsentRequest(
        address=to, categories=["newsletters"], source="website-form"), metadata=md)
    assert asked.confirmation_sent
    assert [(c.category, c.granted, c.pending, c.source) for c in asked.changes] == [
        ("newsletters", True, True, "website-form")]
    assert (await _send(stubs, md, to, news)).status == message_pb2.MESSAGE_STATUS_SUPPRESSED  # pending

    (mail,) = await mailbox.wait_for(to)
    assert mail["Subject"].startswith("Please confirm") and mail["List-Unsubscribe"] is None
    confirm = "/k/" + re.search(r"/k/(\S+)", mail.get_body(("plain",)).get_content()).group(1)
    page = await comms_http.get(confirm)  # a link scanner's GET confirms nothing
    assert page.status_code == 200 and "newsletters" in page.text
    assert (await _history(stubs, md, to))[0].pending
    assert (await comms_http.post(confirm, data={})).status_code == 403
    done = await comms_http.post(confirm, data={"form": _form_token(page.text)},
                                 headers={"user-agent": "Mozilla/5.0 (X11) Firefox/130.0"})
    assert done.status_code == 200 and "will receive newsletters" in done.text
    latest = (await _history(stubs, md, to))[0]
    assert (latest.category, latest.granted, latest.pending, latest.source) == (
        "newsletters", True, False, "double-opt-in")
    assert "Firefox" in latest.detail and latest.HasField("change_time")
    assert (await _send(stubs, md, to, news)).status == message_pb2.MESSAGE_STATUS_QUEUED
    again = await comms_http.post(confirm, data={"form": _form_token(page.text)})
    assert "nothing new" in again.text and len(await _history(stubs, md, to)) == 2

    # from the preference page: a new tick is pending too, with its own confirmation mail
    (_, news_mail) = await mailbox.wait_for(to, count=2)
    path = "/p/" + re.search(r"/p/(\S+)", news_mail.get_body(("plain",)).get_content()).group(1)
    page = await comms_http.get(path)
    saved = await comms_http.post(path, data={"category": ["newsletters", "appeals"], "form": _form_token(page.text)})
    assert "confirm your new choices" in saved.text and "waiting for your confirmation" in saved.text
    mails = await mailbox.wait_for(to, count=3)
    assert "appeals" in mails[-1].get_body(("plain",)).get_content()
