"""Enum and value mappings shared by comms' servicers."""

from __future__ import annotations

from givance.comms.v1 import communication_pb2, message_pb2, suppression_pb2
from google.protobuf import json_format, struct_pb2

CHANNEL_IN = {
    message_pb2.CHANNEL_EMAIL: "email", message_pb2.CHANNEL_PHONE: "phone", message_pb2.CHANNEL_MEETING: "meeting",
    message_pb2.CHANNEL_LETTER: "letter", message_pb2.CHANNEL_SMS: "sms", message_pb2.CHANNEL_WHATSAPP: "whatsapp",
    message_pb2.CHANNEL_OTHER: "other",
}
CHANNEL_OUT = {v: k for k, v in CHANNEL_IN.items()}
STATUS_IN = {
    message_pb2.MESSAGE_STATUS_QUEUED: "queued", message_pb2.MESSAGE_STATUS_SENT: "sent",
    message_pb2.MESSAGE_STATUS_DELIVERED: "delivered", message_pb2.MESSAGE_STATUS_BOUNCED: "bounced",
    message_pb2.MESSAGE_STATUS_SUPPRESSED: "suppressed", message_pb2.MESSAGE_STATUS_FAILED: "failed",
}
STATUS_OUT = {v: k for k, v in STATUS_IN.items()}
DIRECTION_IN = {communication_pb2.DIRECTION_INBOUND: "inbound", communication_pb2.DIRECTION_OUTBOUND: "outbound"}
DIRECTION_OUT = {v: k for k, v in DIRECTION_IN.items()}
REASON_OUT = {
    "unsubscribed": suppression_pb2.SUPPRESSION_REASON_UNSUBSCRIBED,
    "hard_bounce": suppression_pb2.SUPPRESSION_REASON_HARD_BOUNCE,
    "complaint": suppression_pb2.SUPPRESSION_REASON_COMPLAINT, "manual": suppression_pb2.SUPPRESSION_REASON_MANUAL,
}


def struct_dict(s: struct_pb2.Struct) -> dict:
    return json_format.MessageToDict(s)
