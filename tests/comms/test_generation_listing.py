"""ListEmailGenerationSessions (newest first, AIP-158 paging, a status filter) and the signer of a
session: another than the caller must be an active member of the organization (comms' replica of
identity's memberships, chassis.members), checked without asking identity."""

from __future__ import annotations

import uuid

import grpc
from givance.comms.v1 import generation_pb2 as gpb
from givance.comms.v1 import generation_service_pb2 as pb
from givance.identity.v1 import identity_service_pb2 as ipb
from givance.identity.v1 import session_service_pb2 as spb

from tests.helpers import eventually, fails, invalid


def _session(name: str, donor: str, signer: str = "") -> pb.CreateEmailGenerationSessionRequest:
    return pb.CreateEmailGenerationSessionRequest(session=gpb.EmailGenerationSession(
        name=name, donor_ids=[donor], signer=gpb.Signer(user_id=signer, name="Dana")))


async def test_sessions_are_listed_newest_first_page_by_page_and_by_status(stubs, tenant, other_tenant, generation):
    gen, _ = generation
    made = [(await gen.CreateEmailGenerationSession(_session(f"S{i}", str(uuid.uuid4())), metadata=tenant.md)).session
            for i in range(3)]
    cancelled = (await gen.CancelEmailGenerationSession(pb.CancelEmailGenerationSessionRequest(id=made[1].id),
                                                        metadata=tenant.md)).session
    assert cancelled.status == gpb.SESSION_STATUS_CANCELLED or cancelled.status == gpb.SESSION_STATUS_COMPLETED

    seen, token = [], ""
    while True:
        page = await gen.ListEmailGenerationSessions(pb.ListEmailGenerationSessionsRequest(
            page_size=2, page_token=token), metadata=tenant.md)
        assert len(page.sessions) <= 2
        seen += [s.id for s in page.sessions]
        token = page.next_page_token
        if not token:
            break
    assert seen == [s.id for s in reversed(made)]

    status = cancelled.status
    only = await gen.ListEmailGenerationSessions(pb.ListEmailGenerationSessionsRequest(status=status),
                                                 metadata=tenant.md)
    assert made[1].id in [s.id for s in only.sessions] and all(s.status == status for s in only.sessions)
    # another organization lists none of ours
    assert not (await gen.ListEmailGenerationSessions(pb.ListEmailGenerationSessionsRequest(),
                                                      metadata=other_tenant.md)).sessions
    # bad input, named
    await invalid(gen.ListEmailGenerationSessions(pb.ListEmailGenerationSessionsRequest(page_size=-1),
                                                  metadata=tenant.md), "page_size")
    await invalid(gen.ListEmailGenerationSessions(pb.ListEmailGenerationSessionsRequest(page_token="nope"),
                                                  metadata=tenant.md), "page_token")
    first = await gen.ListEmailGenerationSessions(pb.ListEmailGenerationSessionsRequest(page_size=1),
                                                  metadata=tenant.md)
    await invalid(gen.ListEmailGenerationSessions(pb.ListEmailGenerationSessionsRequest(
        page_size=1, page_token=first.next_page_token, status=gpb.SESSION_STATUS_COMPLETED), metadata=tenant.md),
        "page_token")  # a token of another filter
    await invalid(gen.ListEmailGenerationSessions(pb.ListEmailGenerationSessionsRequest(status=99),
                                                  metadata=tenant.md), "status")


async def test_the_signer_must_be_a_member_of_the_organization(stubs, tenant, other_tenant, generation):
    gen, _ = generation
    # a service account creates the session, naming a member as its signer
    sa = await stubs.sessions.CreateServiceAccount(spb.CreateServiceAccountRequest(
        name="mailer", permissions=["comms.generation.write", "comms.generation.read", "crm.donors.read"]),
        metadata=tenant.md)
    token = (await stubs.identity.IssueServiceToken(ipb.IssueServiceTokenRequest(
        client_id=sa.service_account.client_id, client_secret=sa.client_secret))).access_token
    md = (("authorization", f"Bearer {token}"), ("x-tenant-id", tenant.org_id))
    donor = str(uuid.uuid4())

    async def as_member():  # the owner's membership reaches comms' replica from identity's event
        try:
            return (await gen.CreateEmailGenerationSession(_session("Signed", donor, tenant.user_id),
                                                           metadata=md)).session
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.INVALID_ARGUMENT:
                raise
            return None
    session = await eventually(as_member, what="the owner in comms' members")
    assert session.signer.user_id == tenant.user_id
    # nobody's id, and another organization's member: refused, named, nothing written
    before = len((await gen.ListEmailGenerationSessions(pb.ListEmailGenerationSessionsRequest(), metadata=md)).sessions)
    await invalid(gen.CreateEmailGenerationSession(_session("Stranger", donor, str(uuid.uuid4())), metadata=md),
                  "session.signer.user_id")
    await invalid(gen.CreateEmailGenerationSession(_session("Theirs", donor, other_tenant.user_id), metadata=md),
                  "session.signer.user_id")
    after = len((await gen.ListEmailGenerationSessions(pb.ListEmailGenerationSessionsRequest(), metadata=md)).sessions)
    assert after == before
    # the caller themself needs no replica: their token vouches for them
    mine = (await gen.CreateEmailGenerationSession(_session("Mine", donor, tenant.user_id), metadata=tenant.md)).session
    assert mine.signer.user_id == tenant.user_id
    await fails(gen.ListEmailGenerationSessions(pb.ListEmailGenerationSessionsRequest(),
                                                metadata=(("x-tenant-id", tenant.org_id),)),
                grpc.StatusCode.UNAUTHENTICATED)
