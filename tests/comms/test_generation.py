"""AI email generation sessions end to end, on the real servers: a 50-donor session from
creation to drafts (ai's worker, the built-in composer), review, approval, sending through the
send queue to the SMTP catcher, and an open recorded; cancelling; bad input named by field."""

from __future__ import annotations

import asyncio
import re
import uuid

import grpc
from givance.comms.v1 import generation_pb2 as gpb
from givance.comms.v1 import generation_service_pb2 as pb
from givance.crm.v1 import donor_list_pb2, donor_list_service_pb2
from google.protobuf import field_mask_pb2

from tests.comms.conftest import email_worker
from tests.helpers import day, eventually, fails, gift, invalid, new_donor, usd

BROWSER = {"user-agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Safari/605.1.15"}


async def donors_with_gifts(stubs, tenant, n: int, tag: str, base: int = 100) -> list[tuple[str, str, str]]:
    """n donors, each with one gift of its own amount: (donor id, email, "$<amount>.00")."""
    async def one(i: int):
        email = f"{tag}-{i}-{uuid.uuid4().hex[:6]}@example.org"
        d = (await stubs.donors.CreateDonor(new_donor(first_name=f"Donor{i}", last_name=tag, email=email),
                                            metadata=tenant.md)).donor
        await stubs.donations.RecordDonation(gift(d.id, usd(base + i), date=day(2026, 10, 1 + i % 28)),
                                             metadata=tenant.md)
        return d.id, email, f"${base + i}.00"

    out = []
    for start in range(0, n, 10):
        out += await asyncio.gather(*(one(i) for i in range(start, min(n, start + 10))))
    return out


async def all_emails(gen, tenant, session_id: str, status=0, page_size: int = 20) -> list:
    emails, token = [], ""
    while True:
        r = await gen.ListGeneratedEmails(pb.ListGeneratedEmailsRequest(
            session_id=session_id, page_size=page_size, page_token=token, status=status), metadata=tenant.md)
        emails += r.emails
        token = r.next_page_token
        if not token:
            return emails


async def test_a_50_donor_session_from_creation_to_sent_and_opened(stubs, tenant, generation, acting, mailbox,
                                                                  comms_http, admin_db):
    gen, _ = generation
    acting.register(tenant)
    donors = await donors_with_gifts(stubs, tenant, 50, "gala")
    lst = (await stubs.donor_lists.CreateDonorList(donor_list_service_pb2.CreateDonorListRequest(
        donor_list=donor_list_pb2.DonorList(name="Gala guests")), metadata=tenant.md)).donor_list
    await stubs.donor_lists.AddDonorListMembers(donor_list_service_pb2.AddDonorListMembersRequest(
        list_id=lst.id, donor_ids=[d for d, _, _ in donors]), metadata=tenant.md)

    request = pb.CreateEmailGenerationSessionRequest(request_id="gala-1", session=gpb.EmailGenerationSession(
        name="Gala thank-yous", instructions="Thank them for their latest gift", donor_list_id=lst.id,
        signer=gpb.Signer(name="Dana Reyes")))
    session = (await gen.CreateEmailGenerationSession(request, metadata=tenant.md)).session
    assert session.total_emails == 50 and session.donor_list_id == lst.id
    assert session.signer.user_id == tenant.user_id
    again = (await gen.CreateEmailGenerationSession(request, metadata=tenant.md)).session
    assert again.id == session.id  # request_id: the first session, nothing queued twice

    seen = [u.session async for u in gen.WatchEmailGenerationSession(
        pb.WatchEmailGenerationSessionRequest(id=session.id), metadata=tenant.md)]
    assert seen[-1].status == gpb.SESSION_STATUS_COMPLETED
    assert (seen[-1].generated_count, seen[-1].failed_count) == (50, 0)
    done = [s.generated_count + s.failed_count for s in seen]
    assert done == sorted(done)
    assert str(acting.asked[-1]) == tenant.org_id

    drafts = await all_emails(gen, tenant, session.id)
    assert len(drafts) == 50 and {e.donor_id for e in drafts} == {d for d, _, _ in donors}
    amount_of = {d: a for d, _, a in donors}
    gift_of = {}
    for e in drafts:
        assert e.status == gpb.GENERATED_EMAIL_STATUS_DRAFT and e.model == "builtin-composer"
        assert amount_of[e.donor_id] in e.body_plain and "Dana Reyes" in e.body_plain
        assert len(e.grounding.donation_ids) == 1 and "first_name" in e.grounding.donor_fields
        gift_of[e.donor_id] = e.grounding.donation_ids[0]
    gifts = {r["donor_id"]: str(r["id"]) for r in await admin_db.fetch(
        "SELECT id, donor_id::text FROM crm.donations WHERE organization_id = $1", uuid.UUID(tenant.org_id))}
    assert gift_of == gifts  # each draft rests on its own donor's gift

    # review: an edit, a rejection (edited back to a draft), one approval, then all the rest at once
    first, second, third = drafts[:3]
    edited = (await gen.UpdateGeneratedEmail(pb.UpdateGeneratedEmailRequest(
        email=gpb.GeneratedEmail(id=first.id, subject="A warm thank-you", etag=first.etag),
        update_mask=field_mask_pb2.FieldMask(paths=["subject"])), metadata=tenant.md)).email
    assert edited.subject == "A warm thank-you" and edited.body_plain == first.body_plain
    await fails(gen.UpdateGeneratedEmail(pb.UpdateGeneratedEmailRequest(
        email=gpb.GeneratedEmail(id=first.id, subject="stale", etag=first.etag),
        update_mask=field_mask_pb2.FieldMask(paths=["subject"])), metadata=tenant.md), grpc.StatusCode.ABORTED)
    rejected = (await gen.RejectEmail(pb.RejectEmailRequest(id=second.id, reason="too formal"),
                                      metadata=tenant.md)).email
    assert rejected.status == gpb.GENERATED_EMAIL_STATUS_REJECTED and rejected.status_reason == "too formal"
    back = (await gen.UpdateGeneratedEmail(pb.UpdateGeneratedEmailRequest(
        email=gpb.GeneratedEmail(id=second.id, body_plain=second.body_plain + "\nP.S. See you soon."),
        update_mask=field_mask_pb2.FieldMask(paths=["body_plain"])), metadata=tenant.md)).email
    assert back.status == gpb.GENERATED_EMAIL_STATUS_DRAFT and "<br>P.S. See you soon.</p>" in back.body_html
    approved = (await gen.ApproveEmail(pb.ApproveEmailRequest(id=third.id), metadata=tenant.md)).email
    assert approved.status == gpb.GENERATED_EMAIL_STATUS_APPROVED and approved.approved_by == tenant.user_id
    batch = await gen.BatchApproveEmails(pb.BatchApproveEmailsRequest(session_id=session.id), metadata=tenant.md)
    assert batch.approved_count == 49

    sent = await gen.SendApprovedEmails(pb.SendApprovedEmailsRequest(session_id=session.id), metadata=tenant.md)
    assert (sent.scheduled_count, sent.failed_count) == (50, 0)
    again = await gen.SendApprovedEmails(pb.SendApprovedEmailsRequest(session_id=session.id), metadata=tenant.md)
    assert again.scheduled_count == 0  # nothing approved is left: nothing goes twice

    mails = {}
    for donor, address, amount in donors:
        (mail,) = await mailbox.wait_for(address)
        text = mail.get_body(("plain",)).get_content()
        assert amount in text and "List-Unsubscribe" in mail and "/u/" in text
        mails[donor] = mail
    assert len({m["Message-ID"] for m in mails.values()}) == 50
    assert mails[first.donor_id]["Subject"] == "A warm thank-you"

    await eventually(lambda: _count(gen, tenant, session.id, gpb.GENERATED_EMAIL_STATUS_SENT, 50),
                     what="every email SENT")
    # a person opens one: the pixel is recorded and counted on the generated email
    html = mails[third.donor_id].get_body(("html",)).get_content()
    pixel = re.search(r'src="https?://[^/"]+(/o/[^"]+)"', html).group(1)
    carrier = uuid.UUID((await _email(gen, tenant, session.id, third.id)).message_id)
    await admin_db.execute("UPDATE comms.messages SET sent_at = now() - interval '1 hour' WHERE id = $1", carrier)
    assert (await comms_http.get(pixel, headers=BROWSER)).status_code == 200
    opened = await _email(gen, tenant, session.id, third.id)
    assert opened.open_count == 1 and opened.status == gpb.GENERATED_EMAIL_STATUS_SENT and opened.send_time.seconds


async def _count(gen, tenant, session_id, status, n) -> bool:
    return len(await all_emails(gen, tenant, session_id, status=status, page_size=500)) == n


async def _email(gen, tenant, session_id, email_id):
    return next(e for e in await all_emails(gen, tenant, session_id, page_size=500) if e.id == email_id)


async def test_cancel_stops_the_pending_jobs(stubs, tenant, generation, acting, hosts, admin_db):
    gen, _ = generation
    acting.register(tenant)
    donors = [(await stubs.donors.CreateDonor(new_donor(first_name=f"C{i}"), metadata=tenant.md)).donor.id
              for i in range(12)]
    worker = email_worker(hosts)
    await worker.stop()  # the jobs wait in the queue while the session is cancelled
    try:
        session = (await gen.CreateEmailGenerationSession(pb.CreateEmailGenerationSessionRequest(
            session=gpb.EmailGenerationSession(name="Spring", donor_ids=donors + donors[:2],
                                               signer=gpb.Signer(name="Dana"))), metadata=tenant.md)).session
        assert session.total_emails == 12  # repeats ignored
        cancelled = (await gen.CancelEmailGenerationSession(pb.CancelEmailGenerationSessionRequest(id=session.id),
                                                            metadata=tenant.md)).session
        assert cancelled.status == gpb.SESSION_STATUS_CANCELLED and cancelled.complete_time.seconds
        watched = [u.session async for u in gen.WatchEmailGenerationSession(
            pb.WatchEmailGenerationSessionRequest(id=session.id), metadata=tenant.md)]
        assert [s.status for s in watched] == [gpb.SESSION_STATUS_CANCELLED]
    finally:
        await worker.run()  # start again (retrying while the broker is unreachable)
    events = [r["event_id"] for r in await admin_db.fetch(
        "SELECT event_id FROM comms.outbox WHERE aggregate_id = $1 AND routing_key = 'comms.generation_job.requested'",
        session.id)]
    assert len(events) == 12

    async def taken() -> bool:
        return await admin_db.fetchval("SELECT count(*) FROM ai.inbox WHERE consumer = 'ai.email-generation-jobs' "
                                       "AND event_id = ANY($1::uuid[])", events) == 12

    await eventually(taken, what="the worker to take every job")
    assert await all_emails(gen, tenant, session.id) == []
    got = (await gen.GetEmailGenerationSession(pb.GetEmailGenerationSessionRequest(id=session.id),
                                               metadata=tenant.md)).session
    assert (got.status, got.generated_count, got.failed_count) == (gpb.SESSION_STATUS_CANCELLED, 0, 0)


async def test_bad_input_is_named_by_field_and_nothing_is_written(tenant, generation, admin_db):
    gen, jobs = generation

    def create(**kw):
        kw.setdefault("name", "x")
        kw.setdefault("signer", gpb.Signer(name="Dana"))
        return gen.CreateEmailGenerationSession(pb.CreateEmailGenerationSessionRequest(
            session=gpb.EmailGenerationSession(**kw)), metadata=tenant.md)

    d = str(uuid.uuid4())
    await invalid(create(donor_ids=[d], name=""), "session.name")
    await invalid(create(donor_ids=[d], name="n" * 201), "session.name")
    await invalid(create(), "session.donor_ids")
    await invalid(create(donor_ids=[d], donor_list_id=d), "session.donor_ids")
    await invalid(create(donor_ids=["nope"]), "session.donor_ids[0]")
    await invalid(create(donor_ids=[d] * 5001), "session.donor_ids")
    await invalid(create(donor_ids=[d], instructions="i" * 5001), "session.instructions")
    await invalid(create(donor_ids=[d], template="t" * 20_001), "session.template")
    await invalid(create(donor_ids=[d], signer=gpb.Signer(name="")), "session.signer.name")
    await invalid(create(donor_ids=[d], signer=gpb.Signer(name="D", user_id="me")), "session.signer.user_id")
    await invalid(create(donor_ids=[d], donor_list_id="", description="x" * 2001), "session.description")
    await invalid(gen.CreateEmailGenerationSession(pb.CreateEmailGenerationSessionRequest(
        request_id="r" * 101, session=gpb.EmailGenerationSession(name="x", donor_ids=[d], signer=gpb.Signer(
            name="D"))), metadata=tenant.md), "request_id")
    assert await admin_db.fetchval("SELECT count(*) FROM comms.email_generation_sessions WHERE organization_id = $1",
                                   uuid.UUID(tenant.org_id)) == 0
    await invalid(gen.GetEmailGenerationSession(pb.GetEmailGenerationSessionRequest(id="x"), metadata=tenant.md), "id")
    await invalid(gen.ListGeneratedEmails(pb.ListGeneratedEmailsRequest(session_id=d, page_size=-1),
                                          metadata=tenant.md), "page_size")
    await invalid(gen.RejectEmail(pb.RejectEmailRequest(id=d, reason="r" * 1001), metadata=tenant.md), "reason")
    await invalid(gen.BatchApproveEmails(pb.BatchApproveEmailsRequest(session_id=d, ids=["x"]), metadata=tenant.md),
                  "ids[0]")
    await invalid(gen.SendApprovedEmails(pb.SendApprovedEmailsRequest(session_id=d, ids=[d] * 1001),
                                         metadata=tenant.md), "ids")
    await invalid(gen.UpdateGeneratedEmail(pb.UpdateGeneratedEmailRequest(
        email=gpb.GeneratedEmail(id=d, subject=""), update_mask=field_mask_pb2.FieldMask(paths=["subject"])),
        metadata=tenant.md), "email.subject")
    await invalid(gen.UpdateGeneratedEmail(pb.UpdateGeneratedEmailRequest(
        email=gpb.GeneratedEmail(id=d), update_mask=field_mask_pb2.FieldMask(paths=["status"])),
        metadata=tenant.md), "update_mask")
    await invalid(jobs.CompleteGenerationJob(pb.CompleteGenerationJobRequest(
        session_id=d, donor_id=d, draft=pb.Draft(subject="", body="b", model="m")), metadata=tenant.md),
        "draft.subject")
    await invalid(jobs.StartGenerationJob(pb.StartGenerationJobRequest(session_id="x", donor_id=d),
                                          metadata=tenant.md), "session_id")
