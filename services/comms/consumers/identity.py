"""identity's account mail: email verification, password reset, invitations and phone codes.

identity seals each link or code for comms (chassis.crypto.seal_event_secret: the event type
and aggregate id as associated data); comms opens it, renders the system template (or the
organization's override) and queues the message, sealed at rest, never tracked, never
suppressed (an account mail is not marketing). The inbox makes a redelivery a no-op.
"""

from __future__ import annotations

from givance.events.v1 import event_pb2, identity_events_pb2

from chassis import events
from chassis.crypto import open_event_secret
from chassis.db import UnitOfWork
from services.comms.consumers.bound import Bound
from services.comms.handlers import account_mail

QUEUE = "comms.identity-mail"
EMAIL_VERIFICATION = "identity.user.email_verification_requested"
PASSWORD_RESET = "identity.user.password_reset_requested"
INVITATION = "identity.invitation.created"
PHONE_VERIFICATION = "identity.user.phone_verification_requested"
BINDINGS = [EMAIL_VERIFICATION, PASSWORD_RESET, INVITATION, PHONE_VERIFICATION]


class IdentityMail(Bound):
    async def __call__(self, uow: UnitOfWork, event: event_pb2.Event) -> None:
        deps = self.deps_for(uow)
        keys = deps.event_keys
        if event.type == EMAIL_VERIFICATION:
            e = events.unpack(event, identity_events_pb2.EmailVerificationRequestedEvent)
            link = open_event_secret(keys, event.type, e.user_id, e.sealed_verify_link)
            await account_mail.queue_account_mail(uow, deps, "email-verification", e.email,
                                                  {"link": link, "expires": _when(e.expire_time)}, event.id)
        elif event.type == PASSWORD_RESET:
            e = events.unpack(event, identity_events_pb2.PasswordResetRequestedEvent)
            link = open_event_secret(keys, event.type, e.user_id, e.sealed_reset_link)
            await account_mail.queue_account_mail(uow, deps, "password-reset", e.email,
                                                  {"link": link, "expires": _when(e.expire_time)}, event.id)
        elif event.type == INVITATION:
            e = events.unpack(event, identity_events_pb2.InvitationCreatedEvent)
            link = open_event_secret(keys, event.type, e.invitation_id, e.sealed_accept_link)
            await account_mail.queue_account_mail(uow, deps, "invitation", e.email,
                                                  {"link": link, "role": e.role, "expires": _when(e.expire_time)},
                                                  event.id)
        elif event.type == PHONE_VERIFICATION:
            e = events.unpack(event, identity_events_pb2.PhoneVerificationRequestedEvent)
            code = open_event_secret(keys, event.type, e.user_id, e.sealed_code)
            await account_mail.queue_account_mail(uow, deps, "phone-verification", e.phone, {"code": code},
                                                  event.id, channel="sms")


def _when(ts) -> str:
    return ts.ToDatetime().strftime("%Y-%m-%d %H:%M UTC") if ts.seconds else "soon"


on_identity_mail = IdentityMail()
