"""Donor messages: givance.crm.v1.Donor to the handlers' DonorFields, and a stored donor
record to a Donor (with its salutations and giving totals). Shared by every servicer that returns
donors (donors, transfer, journeys, lists)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from givance.crm.v1 import donor_pb2
from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict

from chassis.convert import date as date_pb
from chassis.convert import from_timestamp, money, timestamp
from chassis.errors import InvalidArgument
from chassis.resource import etag
from services.crm.handlers.donors import Donor, DonorFields

_TYPE_IN = {donor_pb2.DONOR_TYPE_UNSPECIFIED: "individual", donor_pb2.DONOR_TYPE_INDIVIDUAL: "individual",
            donor_pb2.DONOR_TYPE_COUPLE: "couple"}
_TYPE_OUT = {"individual": donor_pb2.DONOR_TYPE_INDIVIDUAL, "couple": donor_pb2.DONOR_TYPE_COUPLE}
_EMAIL_STATUS_OUT = {"ok": donor_pb2.EMAIL_STATUS_OK, "bounced": donor_pb2.EMAIL_STATUS_BOUNCED,
                     "complained": donor_pb2.EMAIL_STATUS_COMPLAINED,
                     "unsubscribed": donor_pb2.EMAIL_STATUS_UNSUBSCRIBED}


def fields_from_proto(d: donor_pb2.Donor) -> DonorFields:
    if d.type not in _TYPE_IN:
        raise InvalidArgument.field("donor.type", f"unknown donor type {d.type}")
    return DonorFields(
        external_id=d.external_id, donor_type=_TYPE_IN[d.type], first_name=d.first_name, last_name=d.last_name,
        email=d.email, phone=d.phone, spouse_first_name=d.spouse_first_name, spouse_last_name=d.spouse_last_name,
        spouse_email=d.spouse_email, address_street=d.address.street, address_city=d.address.city,
        address_state=d.address.state, address_zip=d.address.postal_code, address_country=d.address.country,
        journey_stage=d.journey_stage, ai_classification=d.ai_classification,
        last_contact_at=from_timestamp(d.last_contact_time) if d.HasField("last_contact_time") else None,
        notes=d.notes, tags=list(d.tags),
        custom_fields=MessageToDict(d.custom_fields) if d.HasField("custom_fields") else {},
        formal_salutation=d.formal_salutation, informal_salutation=d.informal_salutation,
    )


def donor_to_proto(d: Donor) -> donor_pb2.Donor:
    custom = struct_pb2.Struct()
    custom.update(d.custom_fields or {})
    formal, informal = d.salutations()
    return donor_pb2.Donor(
        id=str(d.id), organization_id=str(d.organization_id), external_id=d.external_id or "",
        type=_TYPE_OUT[d.donor_type], first_name=d.first_name, last_name=d.last_name,
        email=d.email or "", phone=d.phone or "", spouse_first_name=d.spouse_first_name or "",
        spouse_last_name=d.spouse_last_name or "", spouse_email=d.spouse_email or "",
        address=donor_pb2.Address(street=d.address_street or "", city=d.address_city or "",
                                  state=d.address_state or "", postal_code=d.address_zip or "",
                                  country=d.address_country or ""),
        journey_stage=d.journey_stage or "", ai_classification=d.ai_classification or "",
        last_contact_time=timestamp(d.last_contact_at), notes=d.notes or "", tags=d.tags or [],
        custom_fields=custom,
        giving_totals=[
            donor_pb2.GivingTotal(
                lifetime_amount=money(Decimal(g.amount), g.currency), donation_count=g.count,
                first_gift_date=date_pb(_date(g.first)), last_gift_date=date_pb(_date(g.last)),
                soft_amount=money(Decimal(g.soft), g.currency), soft_credit_count=g.soft_count,
                combined_amount=money(Decimal(g.amount) + Decimal(g.soft), g.currency),
            )
            for g in d.giving or []
        ],
        create_time=timestamp(d.created_at), update_time=timestamp(d.updated_at),
        delete_time=timestamp(d.deleted_at), etag=etag(d.version),
        formal_salutation=formal, informal_salutation=informal,
        email_status=_EMAIL_STATUS_OUT[d.email_status], email_status_time=timestamp(d.email_status_at),
    )


def _date(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value
