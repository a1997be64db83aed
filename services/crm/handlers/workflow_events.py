"""The events a workflow can start on or wait for: ONE table, event type -> payload message.

Adding an event type a workflow may react to is one line below: crm's trigger consumer binds
it (consumers/workflow_triggers.py), a definition may name it, and its conditions may test the
payload's fields (read from the message's descriptor: money as a number and `<name>_currency`,
a date's `year`, `month`, `day`). A key ending in `.*` is a family of one payload (a routing
pattern). The rules on a definition are domain.workflow_events'.
"""

from __future__ import annotations

from givance.events.v1 import billing_events_pb2 as billing
from givance.events.v1 import comms_events_pb2 as comms
from givance.events.v1 import crm_events_pb2 as crm
from givance.events.v1 import identity_events_pb2 as identity
from google.protobuf import json_format
from google.protobuf.any_pb2 import Any
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from services.crm.domain.workflow_events import TriggerCatalog, TriggerEvent

PAYLOADS: dict[str, type[Message]] = {
    # crm: donors and gifts
    "crm.donor.created": crm.DonorCreatedEvent,
    "crm.donor.merged": crm.DonorMergedEvent,
    "crm.donor.stage_changed": crm.DonorStageChangedEvent,
    "crm.donation.recorded": crm.DonationRecordedEvent,
    "crm.donation.updated": crm.DonationUpdatedEvent,
    "crm.donation.refunded": crm.DonationRefundedEvent,
    "crm.batch.posted": crm.BatchPostedEvent,
    "crm.soft_credit.added": crm.SoftCreditEvent,
    "crm.soft_credit.changed": crm.SoftCreditEvent,
    "crm.soft_credit.removed": crm.SoftCreditEvent,
    "crm.household.created": crm.HouseholdEvent,
    "crm.household.updated": crm.HouseholdEvent,
    "crm.household.member_joined": crm.HouseholdMemberEvent,
    "crm.household.member_left": crm.HouseholdMemberEvent,
    "crm.receipt.corrected": crm.ReceiptCorrectedEvent,
    "crm.pledge.created": crm.PledgeEvent,
    "crm.pledge.payment_applied": crm.PledgeEvent,
    "crm.pledge.fulfilled": crm.PledgeEvent,
    "crm.pledge.reopened": crm.PledgeEvent,
    "crm.pledge.written_off": crm.PledgeEvent,
    "crm.matching_gift.pledged": crm.MatchingGiftEvent,
    "crm.matching_gift.received": crm.MatchingGiftEvent,
    "crm.tribute.recorded": crm.TributeRecordedEvent,
    # crm: the firm side
    "crm.client.created": crm.ClientChangedEvent,
    "crm.client.updated": crm.ClientChangedEvent,
    "crm.client.deleted": crm.ClientChangedEvent,
    "crm.contact.created": crm.ContactChangedEvent,
    "crm.contact.updated": crm.ContactChangedEvent,
    "crm.contact.deleted": crm.ContactChangedEvent,
    "crm.contact.merged": crm.ContactMergedEvent,
    "crm.document.uploaded": crm.DocumentChangedEvent,
    "crm.document.version_added": crm.DocumentChangedEvent,
    "crm.document.updated": crm.DocumentChangedEvent,
    "crm.document.deleted": crm.DocumentChangedEvent,
    "crm.document.signatures_requested": crm.DocumentSignatureEvent,
    "crm.document.signed": crm.DocumentSignatureEvent,
    # identity
    "identity.organization.created": identity.OrganizationCreatedEvent,
    "identity.member.joined": identity.MemberJoinedEvent,
    # comms
    "comms.communication.logged": comms.CommunicationLoggedEvent,
    "comms.email.sent": comms.EmailSentEvent,
    "comms.email.delivered": comms.EmailDeliveredEvent,
    "comms.email.opened": comms.EmailOpenedEvent,
    "comms.email.clicked": comms.EmailClickedEvent,
    "comms.email.bounced": comms.EmailBouncedEvent,
    "comms.email.complained": comms.EmailComplainedEvent,
    "comms.email.unsubscribed": comms.EmailUnsubscribedEvent,
    "comms.whatsapp.message_received": comms.WhatsAppMessageReceivedEvent,
    # billing
    "billing.payment.succeeded": billing.PaymentSucceededEvent,
    "billing.payment.refunded": billing.PaymentRefundedEvent,
    "billing.subscription.*": billing.SubscriptionChangedEvent,
    "billing.invoice.*": billing.InvoiceEvent,
}

_MONEY, _DATE, _STRUCT = "google.type.Money", "google.type.Date", "google.protobuf.Struct"
_AS_TEXT = ("google.protobuf.Timestamp", "google.protobuf.Duration")  # JSON strings


def fields_of(descriptor: Descriptor, prefix: str = "") -> set[str]:
    """The paths of a payload's JSON (as crm's conditions see it) a condition may test."""
    out: set[str] = set()
    for f in descriptor.fields:
        name = prefix + f.name
        message = f.message_type if f.type == FieldDescriptor.TYPE_MESSAGE else None
        is_list = getattr(f, "is_repeated", None)
        if is_list is None:  # protobuf before 5.x
            is_list = f.label == FieldDescriptor.LABEL_REPEATED
        if message is None or is_list or message.full_name in _AS_TEXT:
            out.add(name)
        elif message.full_name == _MONEY:
            out.update((name, f"{name}_currency"))
        elif message.full_name == _STRUCT:
            out.update((name, f"{name}.*"))
        elif message.full_name == _DATE:
            out.update((name, f"{name}.year", f"{name}.month", f"{name}.day"))
        else:
            out.add(name)
            out.update(fields_of(message, f"{name}."))
    return out


CATALOG = TriggerCatalog({t: TriggerEvent(m.DESCRIPTOR.name, frozenset(fields_of(m.DESCRIPTOR)))
                          for t, m in PAYLOADS.items()})


def payload_json(event_type: str, payload: Any) -> dict:
    """An event's payload as JSON (proto field names, fields at their defaults included, so a
    condition may test `false` or 0); {} for a type outside the catalog or a payload of another type."""
    cls = PAYLOADS.get(event_type) or PAYLOADS.get(event_type.rsplit(".", 1)[0] + ".*")
    if cls is None:
        return {}
    msg = cls()
    if not payload.Unpack(msg):
        return {}
    return json_format.MessageToDict(msg, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)
