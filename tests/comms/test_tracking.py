"""Opens, clicks and unsubscribes over comms' public HTTP: machine traffic labelled, the click
goes only where the message's own link row says, GET changes nothing, POST unsubscribes."""

from __future__ import annotations

import html
import re
import uuid

from givance.comms.v1 import message_pb2, template_pb2
from givance.comms.v1 import message_service_pb2 as mpb
from givance.comms.v1 import suppression_service_pb2 as xpb
from givance.comms.v1 import template_service_pb2 as tpb

BROWSER = {"user-agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Safari/605.1.15"}


async def _mail(stubs, tenant, mailbox, category="newsletters"):
    name = f"t-{uuid.uuid4().hex[:6]}"
    await stubs.templates.CreateTemplate(tpb.CreateTemplateRequest(template=template_pb2.Template(
        name=name, category=category, subject="Our news", body_text="News: https://hope.example/story",
        body_html='<html><body><p><a href="https://hope.example/story?a=1&b=2">story</a> '
                  '<a href="{{ unsubscribe_url }}">unsubscribe</a></p></body></html>')), metadata=tenant.md)
    to = f"reader-{uuid.uuid4().hex[:8]}@example.org"
    sent = (await stubs.messages.SendMessage(mpb.SendMessageRequest(to_address=to, template_name=name),
                                             metadata=tenant.md)).message
    (mail,) = await mailbox.wait_for(to)
    return sent, to, mail, name


def _paths(mail):
    html = mail.get_body(("html",)).get_content()
    click = re.search(r'href="https?://[^/"]+(/c/[^"]+)"', html).group(1)
    pixel = re.search(r'src="https?://[^/"]+(/o/[^"]+)"', html).group(1)
    https_unsub, mailto = re.findall(r"<([^>]+)>", mail["List-Unsubscribe"])
    return click, pixel, "/u/" + https_unsub.split("/u/", 1)[1], mailto


async def test_opens_and_clicks_are_counted_for_people_and_labelled_for_machines(stubs, tenant, mailbox,
                                                                                 comms_http, admin_db):
    sent, _, mail, _ = await _mail(stubs, tenant, mailbox)
    click, pixel, _, _ = _paths(mail)
    # a link scanner right after delivery: recorded, labelled machine, not counted
    r = await comms_http.get(click, headers={"user-agent": "Mozilla/5.0 (compatible; Barracuda Sentinel)"})
    assert r.status_code == 302 and r.headers["location"] == "https://hope.example/story?a=1&b=2"
    r = await comms_http.get(pixel, headers={"user-agent": "Mozilla/5.0 (via ggpht.com GoogleImageProxy)"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
    # a person, later
    await admin_db.execute("UPDATE comms.messages SET sent_at = now() - interval '1 hour' WHERE id = $1",
                           uuid.UUID(sent.id))
    assert (await comms_http.get(pixel, headers=BROWSER)).status_code == 200
    assert (await comms_http.get(click, headers=BROWSER)).status_code == 302
    got = (await stubs.messages.GetMessage(mpb.GetMessageRequest(id=sent.id), metadata=tenant.md)).message
    assert (got.open_count, got.click_count) == (1, 1)
    rows = await admin_db.fetch("SELECT kind, machine FROM comms.email_events WHERE message_id = $1 "
                                "AND kind IN ('opened', 'clicked') ORDER BY created_at", uuid.UUID(sent.id))
    assert [(r["kind"], r["machine"]) for r in rows] == [("clicked", True), ("opened", True), ("opened", False),
                                                        ("clicked", False)]
    keys = [r["routing_key"] for r in await admin_db.fetch(
        "SELECT routing_key FROM comms.outbox WHERE aggregate_id = $1", sent.id)]
    assert keys.count("comms.email.opened") == 2 and keys.count("comms.email.clicked") == 2
    # the destination is stored server-side: nothing in the token says where it goes
    assert "hope.example" not in click


async def test_unsubscribe_get_changes_nothing_and_one_click_post_unsubscribes(stubs, tenant, mailbox, comms_http):
    _, to, mail, name = await _mail(stubs, tenant, mailbox)
    _, _, unsub, mailto = _paths(mail)
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" and mailto.startswith("mailto:")
    page = await comms_http.get(unsub)
    assert page.status_code == 200 and 'method="post"' in page.text and to in page.text
    history = await stubs.suppressions.ListConsentChanges(xpb.ListConsentChangesRequest(address=to),
                                                          metadata=tenant.md)
    assert not history.changes  # a GET (a link scanner) changed nothing
    again = (await stubs.messages.SendMessage(mpb.SendMessageRequest(to_address=to, template_name=name),
                                              metadata=tenant.md)).message
    assert again.status == message_pb2.MESSAGE_STATUS_QUEUED
    await mailbox.wait_for(to, count=2)

    # RFC 8058: the mail client POSTs List-Unsubscribe=One-Click
    r = await comms_http.post(unsub, content=b"List-Unsubscribe=One-Click",
                              headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200
    (change,) = (await stubs.suppressions.ListConsentChanges(xpb.ListConsentChangesRequest(address=to),
                                                             metadata=tenant.md)).changes
    assert (change.category, change.granted, change.source) == ("newsletters", False, "one-click")
    skipped = (await stubs.messages.SendMessage(mpb.SendMessageRequest(to_address=to, template_name=name),
                                                metadata=tenant.md)).message
    assert skipped.status == message_pb2.MESSAGE_STATUS_SUPPRESSED and "consent" in skipped.status_reason
    # a transactional message still goes (receipts, account mail)
    receipt_like = f"rx-{uuid.uuid4().hex[:6]}"
    await stubs.templates.CreateTemplate(tpb.CreateTemplateRequest(template=template_pb2.Template(
        name=receipt_like, category="transactional", subject="Your receipt", body_text="Thanks")), metadata=tenant.md)
    ok = (await stubs.messages.SendMessage(mpb.SendMessageRequest(to_address=to, template_name=receipt_like),
                                           metadata=tenant.md)).message
    assert ok.status == message_pb2.MESSAGE_STATUS_QUEUED
    await mailbox.wait_for(to, count=3)

    # "everything" from the page suppresses the address
    r = await comms_http.post(unsub, data={"scope": "all"})
    assert r.status_code == 200 and "no more all emails" in r.text
    sups = (await stubs.suppressions.ListSuppressions(xpb.ListSuppressionsRequest(), metadata=tenant.md)).suppressions
    assert [s.address for s in sups] == [to]


async def test_the_unsubscribe_page_links_to_the_same_address_preference_page(stubs, tenant, mailbox, comms_http):
    _, to, mail, _ = await _mail(stubs, tenant, mailbox)
    _, _, unsub, _ = _paths(mail)

    def preference_path(page: str) -> str:
        link = html.unescape(re.search(r'<a href="(https?://[^"]+/p/[^"]+)"', page).group(1))
        return "/p/" + link.split("/p/", 1)[1]

    page = await comms_http.get(unsub)
    assert page.status_code == 200 and "choose which emails you receive" in page.text
    prefs = await comms_http.get(preference_path(page.text))
    assert prefs.status_code == 200 and "Email preferences" in prefs.text and to in prefs.text
    assert 'value="newsletters" checked>' in prefs.text
    assert not (await stubs.suppressions.ListConsentChanges(xpb.ListConsentChangesRequest(address=to),
                                                            metadata=tenant.md)).changes  # GETs changed nothing

    # after a one-click unsubscribe the answer links there too, and the page shows it withdrawn
    done = await comms_http.post(unsub, data={"scope": "category"})
    assert done.status_code == 200 and "will get no more newsletters" in done.text
    after = await comms_http.get(preference_path(done.text))
    assert after.status_code == 200 and to in after.text and 'value="newsletters">' in after.text
    # a tampered unsubscribe token shows no page and no link
    bad = await comms_http.get(unsub[:-2] + ("AA" if not unsub.endswith("AA") else "BB"))
    assert bad.status_code == 404 and "/p/" not in bad.text


async def test_concurrent_clicks_share_transactions_and_each_is_recorded_once(stubs, tenant, mailbox, comms_http,
                                                                              admin_db):
    import asyncio

    sent, _, mail, _ = await _mail(stubs, tenant, mailbox)
    click, _, _, _ = _paths(mail)
    await admin_db.execute("UPDATE comms.messages SET sent_at = now() - interval '1 hour' WHERE id = $1",
                           uuid.UUID(sent.id))
    answers = await asyncio.gather(*(comms_http.get(click, headers=BROWSER) for _ in range(40)))
    assert {r.status_code for r in answers} == {302}  # each answered after its click was committed
    assert await admin_db.fetchval("SELECT count(*) FROM comms.email_events WHERE message_id = $1 "
                                   "AND kind = 'clicked' AND NOT machine", uuid.UUID(sent.id)) == 40
    assert await admin_db.fetchval("SELECT count(*) FROM comms.outbox WHERE aggregate_id = $1 "
                                   "AND routing_key = 'comms.email.clicked'", sent.id) == 40
    got = (await stubs.messages.GetMessage(mpb.GetMessageRequest(id=sent.id), metadata=tenant.md)).message
    assert got.click_count == 40
