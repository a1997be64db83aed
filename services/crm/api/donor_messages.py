"""Donor messages: givance.crm.v1.Donor to the domain's DonorFields, and a stored donor row
to a Donor (with its salutations and giving totals). Shared by every servicer that returns
donors (donors, transfer, journeys, lists)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from givance.crm.v1 import donor_pb2
from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict

from chassis.convert import date as date_pb
from chassis.convert import from_timestamp, money, timestamp
from chassis.errors import InvalidArgument
from services.crm.domain import donors as rules
from services.crm.domain.donors import etag

_TYPE_IN = {donor_pb2.DONOR_TYPE_UNSPECIFIED: rules.INDIVIDUAL, donor_pb2.DONOR_TYPE_INDIVIDUAL: rules.INDIVIDUAL,
            donor_pb2.DONOR_TYPE_COUPLE: rules.COUPLE}
_TYPE_OUT = {rules.INDIVIDUAL: donor_pb2.DONOR_TYPE_INDIVIDUAL, rules.COUPLE: donor_pb2.DONOR_TYPE_COUPLE}


def fields_from_proto(d: donor_pb2.Donor) -> rules.DonorFields:
    if d.type not in _TYPE_IN:
        raise InvalidArgument.field("donor.type", f"unknown donor type {d.type}")
    return rules.DonorFields(
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


def donor_to_proto(row: dict) -> donor_pb2.Donor:
    custom = struct_pb2.Struct()
    custom.update(row["custom_fields"] or {})
    formal, informal = rules.salutations_of(row)
    return donor_pb2.Donor(
        id=str(row["id"]), organization_id=str(row["organization_id"]), external_id=row["external_id"] or "",
        type=_TYPE_OUT[row["donor_type"]], first_name=row["first_name"], last_name=row["last_name"],
        email=row["email"] or "", phone=row["phone"] or "", spouse_first_name=row["spouse_first_name"] or "",
        spouse_last_name=row["spouse_last_name"] or "", spouse_email=row["spouse_email"] or "",
        address=donor_pb2.Address(street=row["address_street"] or "", city=row["address_city"] or "",
                                  state=row["address_state"] or "", postal_code=row["address_zip"] or "",
                                  country=row["address_country"] or ""),
        journey_stage=row["journey_stage"] or "", ai_classification=row["ai_classification"] or "",
        last_contact_time=timestamp(row["last_contact_at"]), notes=row["notes"] or "", tags=row["tags"] or [],
        custom_fields=custom,
        giving_totals=[
            donor_pb2.GivingTotal(
                lifetime_amount=money(Decimal(g["amount"]), g["currency"]), donation_count=g["count"],
                first_gift_date=date_pb(_date(g["first"])), last_gift_date=date_pb(_date(g["last"])),
            )
            for g in row.get("giving") or []
        ],
        create_time=timestamp(row["created_at"]), update_time=timestamp(row["updated_at"]),
        delete_time=timestamp(row["deleted_at"]), etag=etag(row["version"]),
        formal_salutation=formal, informal_salutation=informal,
    )


def _date(value):
    return date.fromisoformat(value) if isinstance(value, str) else value
