"""identity's account mail arrives through comms, and a user completes each flow from it alone:
verify the email, reset the password, accept an invitation, verify a phone by SMS code."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from givance.identity.v1 import account_service_pb2 as apb
from givance.identity.v1 import identity_service_pb2 as ipb
from givance.identity.v1 import membership_service_pb2 as mspb

from tests.conftest import PASSWORD
from tests.helpers import eventually


def _token_from(mail) -> str:
    text = mail.get_body(("plain",)).get_content()
    link = re.search(r"https?://\S+", text).group(0)
    (token,) = parse_qs(urlparse(link).query)["token"]
    html = mail.get_body(("html",)).get_content()
    assert link.replace("&", "&amp;") in html or link in html
    assert "/c/" not in html and "/o/" not in html  # an account mail is never tracked
    return token


async def test_sign_up_then_verify_the_email_from_the_caught_mail(stubs, tenant, mailbox, admin_db):
    await stubs.accounts.RequestEmailVerification(apb.RequestEmailVerificationRequest(), metadata=tenant.md)
    (mail,) = await mailbox.wait_for(tenant.email)
    assert mail["Subject"] == "Confirm your email address" and "List-Unsubscribe" not in mail
    token = _token_from(mail)
    # the link is sealed at rest in comms: a database dump does not hold it
    bodies = await admin_db.fetch("SELECT body_text, sealed FROM comms.messages WHERE organization_id = $1",
                                  uuid.UUID(tenant.org_id))
    assert bodies and all(b["sealed"] and token not in b["body_text"] for b in bodies)
    await stubs.accounts.VerifyEmail(apb.VerifyEmailRequest(token=token))
    account = (await stubs.accounts.GetAccount(apb.GetAccountRequest(), metadata=tenant.md)).account
    assert account.email_verified


async def test_reset_the_password_from_the_caught_mail(stubs, tenant, mailbox):
    await stubs.accounts.RequestPasswordReset(apb.RequestPasswordResetRequest(email=tenant.email))
    (mail,) = await mailbox.wait_for(tenant.email)
    assert mail["Subject"] == "Reset your password"
    new_password = "a brand new horse battery"
    await stubs.accounts.ResetPassword(apb.ResetPasswordRequest(token=_token_from(mail), new_password=new_password))
    login = await stubs.identity.Login(ipb.LoginRequest(email=tenant.email, password=new_password))
    assert login.tokens.access_token
    assert PASSWORD != new_password


async def test_accept_an_invitation_from_the_caught_mail(stubs, tenant, mailbox):
    invitee = f"invitee-{uuid.uuid4().hex[:8]}@example.org"
    await stubs.members.CreateInvitation(mspb.CreateInvitationRequest(email=invitee, role="staff"),
                                         metadata=tenant.md)
    (mail,) = await mailbox.wait_for(invitee)
    assert "invited" in mail["Subject"] and "as staff" in mail.get_body(("plain",)).get_content()
    accepted = await stubs.members.AcceptInvitation(mspb.AcceptInvitationRequest(
        token=_token_from(mail), password="invitee horse battery staple", first_name="Grace", last_name="Hopper"))
    assert accepted.tokens.access_token


async def test_verify_a_phone_with_the_code_the_development_sms_provider_wrote(stubs, tenant, mail_catcher):
    folder = Path(mail_catcher.handler.directory) / "sms"
    await stubs.accounts.RequestPhoneVerification(apb.RequestPhoneVerificationRequest(phone="+1 202 555 0147"),
                                                  metadata=tenant.md)

    def sms_for_me():
        found = [json.loads(p.read_text()) for p in folder.glob("*.json")] if folder.exists() else []
        return [s for s in found if s["to"] == "+12025550147"]

    (sms,) = await eventually(sms_for_me)
    code = re.search(r"\b(\d{6})\b", sms["text"]).group(1)
    got = (await stubs.accounts.VerifyPhone(apb.VerifyPhoneRequest(code=code), metadata=tenant.md)).account
    assert got.phone == "+12025550147"
