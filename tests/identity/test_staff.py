"""Staff profiles: signature, mailbox connections whose OAuth tokens are sealed at rest and
never returned, tenancy and bad input."""

from __future__ import annotations

import uuid

import grpc
import pytest
from cryptography.exceptions import InvalidTag
from givance.identity.v1 import membership_service_pb2 as mpb
from givance.identity.v1 import staff_service_pb2 as spb

from services.identity.crypto import Keyring
from services.identity.handlers.staff import token_aad
from services.identity.settings import IdentitySettings
from tests.helpers import fails, field_violations
from tests.identity.test_memberships import Api, join


@pytest.fixture
def staff(stubs):
    return stubs.staff


@pytest.fixture
def api(stubs):
    return Api(members=stubs.members, crm_donors=stubs.donors)


def _secret() -> str:
    return f"1//0g-{uuid.uuid4().hex}{uuid.uuid4().hex}"


async def _staff_dump(admin_db) -> str:
    return await admin_db.fetchval("SELECT coalesce(string_agg(s::text, '|'), '') FROM identity.staff s")


async def test_profile_signature_and_mailboxes(staff, tenant, admin_db):
    own = (await staff.GetStaffProfile(spb.GetStaffProfileRequest(), metadata=tenant.md)).profile
    assert own.user_id == tenant.user_id and own.active and own.email_signature == "" and own.gmail_email == ""

    signed = (await staff.UpdateStaffProfile(spb.UpdateStaffProfileRequest(email_signature="-- \nAda, Hope Fund"),
                                             metadata=tenant.md)).profile
    assert signed.email_signature == "-- \nAda, Hope Fund"

    gmail_secret, ms_secret = _secret(), _secret()
    connected = await staff.ConnectMailbox(spb.ConnectMailboxRequest(
        provider=spb.MAIL_PROVIDER_GMAIL, email="Ada@Gmail.com", refresh_token=gmail_secret), metadata=tenant.md)
    assert connected.profile.gmail_email == "ada@gmail.com" and connected.profile.email_signature.startswith("-- ")
    both = await staff.ConnectMailbox(spb.ConnectMailboxRequest(
        provider=spb.MAIL_PROVIDER_MICROSOFT, email="ada@outlook.com", refresh_token=ms_secret), metadata=tenant.md)
    assert both.profile.microsoft_email == "ada@outlook.com" and both.profile.gmail_email == "ada@gmail.com"
    # no reply carries a token
    for reply in (connected, both):
        raw = reply.SerializeToString()
        assert gmail_secret.encode() not in raw and ms_secret.encode() not in raw

    # a dump of identity.staff holds neither token in clear
    dump = await _staff_dump(admin_db)
    assert gmail_secret not in dump and ms_secret not in dump and "ada@gmail.com" in dump
    row = await admin_db.fetchrow(
        "SELECT organization_id, user_id, gmail_refresh_token_sealed, microsoft_refresh_token_sealed "
        "FROM identity.staff WHERE user_id = $1", uuid.UUID(tenant.user_id))
    keyring = Keyring(IdentitySettings().encryption_keys)
    org, user = row["organization_id"], row["user_id"]
    assert row["gmail_refresh_token_sealed"].startswith("v1.")
    assert keyring.open(row["gmail_refresh_token_sealed"], token_aad(org, user, "gmail")).decode() == gmail_secret
    assert keyring.open(row["microsoft_refresh_token_sealed"], token_aad(org, user, "microsoft")).decode() == ms_secret
    # bound to its row and provider: it does not open as another's
    with pytest.raises(InvalidTag):
        keyring.open(row["gmail_refresh_token_sealed"], token_aad(org, user, "microsoft"))
    with pytest.raises(InvalidTag):
        keyring.open(row["gmail_refresh_token_sealed"], token_aad(org, uuid.uuid4(), "gmail"))

    out = (await staff.DisconnectMailbox(spb.DisconnectMailboxRequest(provider=spb.MAIL_PROVIDER_GMAIL),
                                         metadata=tenant.md)).profile
    assert out.gmail_email == "" and out.microsoft_email == "ada@outlook.com"
    assert await admin_db.fetchval("SELECT gmail_refresh_token_sealed FROM identity.staff WHERE user_id = $1",
                                   uuid.UUID(tenant.user_id)) is None


async def test_bad_input_names_the_field_and_writes_nothing(staff, tenant, admin_db):
    await staff.UpdateStaffProfile(spb.UpdateStaffProfileRequest(email_signature="before"), metadata=tenant.md)
    before = await _staff_dump(admin_db)
    cases = [
        (staff.ConnectMailbox, spb.ConnectMailboxRequest(email="a@gmail.com", refresh_token="x"), "provider"),
        (staff.ConnectMailbox, spb.ConnectMailboxRequest(provider=spb.MAIL_PROVIDER_GMAIL, email="nope",
                                                         refresh_token="x"), "email"),
        (staff.ConnectMailbox, spb.ConnectMailboxRequest(provider=spb.MAIL_PROVIDER_GMAIL, refresh_token="x"),
         "email"),
        (staff.ConnectMailbox, spb.ConnectMailboxRequest(provider=spb.MAIL_PROVIDER_GMAIL, email="a@gmail.com"),
         "refresh_token"),
        (staff.ConnectMailbox, spb.ConnectMailboxRequest(provider=spb.MAIL_PROVIDER_GMAIL, email="a@gmail.com",
                                                         refresh_token="x" * 5000), "refresh_token"),
        (staff.DisconnectMailbox, spb.DisconnectMailboxRequest(), "provider"),
        (staff.UpdateStaffProfile, spb.UpdateStaffProfileRequest(email_signature="s" * 10_001), "email_signature"),
        (staff.GetStaffProfile, spb.GetStaffProfileRequest(user_id="not-an-id"), "user_id"),
    ]
    for method, request, field in cases:
        e = await fails(method(request, metadata=tenant.md))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and field in field_violations(e), (field, e.details())
    assert await _staff_dump(admin_db) == before


async def test_members_profiles_tenancy_and_removal(staff, api, tenant, other_tenant, admin_db):
    member = await join(api, admin_db, tenant, "viewer")
    secret = _secret()
    await staff.ConnectMailbox(spb.ConnectMailboxRequest(provider=spb.MAIL_PROVIDER_GMAIL, email="m@gmail.com",
                                                         refresh_token=secret), metadata=member.md)
    # colleagues (identity.members.read) see the profile, never the token
    seen = await staff.GetStaffProfile(spb.GetStaffProfileRequest(user_id=member.user_id), metadata=tenant.md)
    assert seen.profile.gmail_email == "m@gmail.com" and secret.encode() not in seen.SerializeToString()
    # another organization's member, or a stranger: not found
    for user_id in (other_tenant.user_id, str(uuid.uuid4())):
        e = await fails(staff.GetStaffProfile(spb.GetStaffProfileRequest(user_id=user_id), metadata=tenant.md))
        assert e.code() == grpc.StatusCode.NOT_FOUND
    e = await fails(staff.GetStaffProfile(spb.GetStaffProfileRequest(user_id=member.user_id), metadata=other_tenant.md))
    assert e.code() == grpc.StatusCode.NOT_FOUND
    # a suspended member's profile is inactive; a removed member's profile and tokens are gone
    await api.members.SuspendMember(mpb.SuspendMemberRequest(user_id=member.user_id), metadata=tenant.md)
    seen = await staff.GetStaffProfile(spb.GetStaffProfileRequest(user_id=member.user_id), metadata=tenant.md)
    assert not seen.profile.active
    await api.members.RemoveMember(mpb.RemoveMemberRequest(user_id=member.user_id), metadata=tenant.md)
    assert await admin_db.fetchval("SELECT count(*) FROM identity.staff WHERE user_id = $1",
                                   uuid.UUID(member.user_id)) == 0
    e = await fails(staff.GetStaffProfile(spb.GetStaffProfileRequest(user_id=member.user_id), metadata=tenant.md))
    assert e.code() == grpc.StatusCode.NOT_FOUND
