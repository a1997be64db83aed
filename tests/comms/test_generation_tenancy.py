"""Tenant isolation over every generation RPC (a test fails if one is added without a case
here), and over the jobs: a session of tenant A naming tenant B's donors reads nothing of B's
(those jobs fail as not found), and the internal jobs service needs its own permission."""

from __future__ import annotations

import uuid

import grpc
from givance.comms.v1 import generation_pb2 as gpb
from givance.comms.v1 import generation_service_pb2 as pb
from givance.identity.v1 import identity_service_pb2 as ipb
from givance.identity.v1 import session_service_pb2 as spb
from google.protobuf import field_mask_pb2

from tests.comms.test_generation import all_emails, donors_with_gifts
from tests.helpers import fails

COVERED = {"CreateEmailGenerationSession", "GetEmailGenerationSession", "ListEmailGenerationSessions",
           "WatchEmailGenerationSession",
           "CancelEmailGenerationSession", "ListGeneratedEmails", "UpdateGeneratedEmail", "ApproveEmail",
           "RejectEmail", "BatchApproveEmails", "SendApprovedEmails", "StartGenerationJob", "CompleteGenerationJob"}


def test_every_rpc_has_a_tenancy_case():
    assert {m.name for s in pb.DESCRIPTOR.services_by_name.values() for m in s.methods} == COVERED


async def test_another_tenant_sees_and_changes_nothing_of_ours(stubs, tenant, other_tenant, generation, acting):
    gen, jobs = generation
    acting.register(tenant)
    acting.register(other_tenant)
    ours = await donors_with_gifts(stubs, tenant, 2, "ours")
    theirs = await donors_with_gifts(stubs, other_tenant, 1, "theirs", base=777)
    # our session names one of their donors: that job fails (not found), nothing of theirs is read
    session = (await gen.CreateEmailGenerationSession(pb.CreateEmailGenerationSessionRequest(
        session=gpb.EmailGenerationSession(name="Ours", donor_ids=[d for d, _, _ in ours] + [theirs[0][0]],
                                           signer=gpb.Signer(name="Dana"))), metadata=tenant.md)).session
    final = [u.session async for u in gen.WatchEmailGenerationSession(
        pb.WatchEmailGenerationSessionRequest(id=session.id), metadata=tenant.md)][-1]
    assert (final.generated_count, final.failed_count) == (2, 1)
    emails = await all_emails(gen, tenant, session.id)
    assert {e.donor_id for e in emails} == {d for d, _, _ in ours}
    assert all(theirs[0][2] not in e.body_plain for e in emails)
    email = emails[0]

    other = other_tenant.md
    nf = grpc.StatusCode.NOT_FOUND
    await fails(gen.GetEmailGenerationSession(pb.GetEmailGenerationSessionRequest(id=session.id), metadata=other), nf)
    listed = await gen.ListEmailGenerationSessions(pb.ListEmailGenerationSessionsRequest(), metadata=other)
    assert session.id not in [s.id for s in listed.sessions]
    with_watch = gen.WatchEmailGenerationSession(pb.WatchEmailGenerationSessionRequest(id=session.id), metadata=other)
    await fails(_drain(with_watch), nf)
    await fails(gen.CancelEmailGenerationSession(pb.CancelEmailGenerationSessionRequest(id=session.id),
                                                 metadata=other), nf)
    await fails(gen.ListGeneratedEmails(pb.ListGeneratedEmailsRequest(session_id=session.id), metadata=other), nf)
    await fails(gen.UpdateGeneratedEmail(pb.UpdateGeneratedEmailRequest(
        email=gpb.GeneratedEmail(id=email.id, subject="x"), update_mask=field_mask_pb2.FieldMask(paths=["subject"])),
        metadata=other), nf)
    await fails(gen.ApproveEmail(pb.ApproveEmailRequest(id=email.id), metadata=other), nf)
    await fails(gen.RejectEmail(pb.RejectEmailRequest(id=email.id), metadata=other), nf)
    await fails(gen.BatchApproveEmails(pb.BatchApproveEmailsRequest(session_id=session.id), metadata=other), nf)
    await fails(gen.SendApprovedEmails(pb.SendApprovedEmailsRequest(session_id=session.id), metadata=other), nf)
    await fails(jobs.StartGenerationJob(pb.StartGenerationJobRequest(session_id=session.id, donor_id=email.donor_id),
                                        metadata=other), nf)
    await fails(jobs.CompleteGenerationJob(pb.CompleteGenerationJobRequest(
        session_id=session.id, donor_id=email.donor_id, failure="x"), metadata=other), nf)
    # their session of our donors: jobs of a donor they cannot see fail, ours is untouched
    mine = (await gen.CreateEmailGenerationSession(pb.CreateEmailGenerationSessionRequest(
        session=gpb.EmailGenerationSession(name="Theirs", donor_ids=[ours[0][0]], signer=gpb.Signer(name="Eve"))),
        metadata=other)).session
    done = [u.session async for u in gen.WatchEmailGenerationSession(
        pb.WatchEmailGenerationSessionRequest(id=mine.id), metadata=other)][-1]
    assert (done.generated_count, done.failed_count) == (0, 1)
    # nothing changed on our side
    still = await all_emails(gen, tenant, session.id)
    assert [(e.id, e.status, e.subject) for e in still] == [(e.id, e.status, e.subject) for e in emails]
    await fails(gen.CreateEmailGenerationSession(pb.CreateEmailGenerationSessionRequest(
        session=gpb.EmailGenerationSession(name="List", donor_list_id=str(uuid.uuid4()),
                                           signer=gpb.Signer(name="Eve"))), metadata=other), nf)


async def _drain(stream) -> None:
    async for _ in stream:
        pass


async def test_the_jobs_service_needs_its_own_permission(stubs, tenant, generation):
    _, jobs = generation
    sa = await stubs.sessions.CreateServiceAccount(spb.CreateServiceAccountRequest(
        name="reader", permissions=["crm.donors.read", "comms.generation.read"]), metadata=tenant.md)
    token = (await stubs.identity.IssueServiceToken(ipb.IssueServiceTokenRequest(
        client_id=sa.service_account.client_id, client_secret=sa.client_secret))).access_token
    md = (("authorization", f"Bearer {token}"), ("x-tenant-id", tenant.org_id))
    d = str(uuid.uuid4())
    await fails(jobs.StartGenerationJob(pb.StartGenerationJobRequest(session_id=d, donor_id=d), metadata=md),
                grpc.StatusCode.PERMISSION_DENIED)
    await fails(jobs.CompleteGenerationJob(pb.CompleteGenerationJobRequest(session_id=d, donor_id=d, failure="x"),
                                           metadata=md), grpc.StatusCode.PERMISSION_DENIED)
