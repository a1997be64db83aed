"""Donor rules: who a donor is and what a valid donor record holds (seed 000)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from chassis.errors import Violations
from services.crm.domain import salutations
from services.crm.domain.contact_points import email, phone

INDIVIDUAL = "individual"
COUPLE = "couple"
DONOR_TYPES = (INDIVIDUAL, COUPLE)
# Limits of every free-text field (docs/crm.md#limits): names, addresses and short texts in
# characters; notes and custom_fields in bytes (UTF-8; custom_fields as compact JSON).
MAX_NAME = 200
MAX_NOTES_BYTES = 10_000
MAX_CUSTOM_FIELDS_BYTES = 16 * 1024
MAX_TAGS = 100
MAX_TAG = 64
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")

# Fields a client may set, as UpdateDonor field-mask paths.
WRITABLE = (
    "external_id", "type", "first_name", "last_name", "email", "phone",
    "spouse_first_name", "spouse_last_name", "spouse_email",
    "address.street", "address.city", "address.state", "address.postal_code", "address.country",
    "journey_stage", "ai_classification", "last_contact_time", "notes", "tags", "custom_fields",
    "formal_salutation", "informal_salutation",
)


@dataclass
class DonorFields:
    """A donor's writable fields, as plain values; None and "" mean unset."""

    external_id: str | None = None
    donor_type: str = INDIVIDUAL
    first_name: str = ""
    last_name: str = ""
    email: str | None = None
    phone: str | None = None
    spouse_first_name: str | None = None
    spouse_last_name: str | None = None
    spouse_email: str | None = None
    address_street: str | None = None
    address_city: str | None = None
    address_state: str | None = None
    address_zip: str | None = None
    address_country: str = "US"
    journey_stage: str | None = None
    ai_classification: str | None = None
    last_contact_at: datetime | None = None
    notes: str | None = None
    tags: list[str] = field(default_factory=list)
    custom_fields: dict[str, Any] = field(default_factory=dict)
    # The donor's own salutations; None means derived from the names (domain.salutations).
    formal_salutation: str | None = None
    informal_salutation: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# mask path -> DonorFields attribute
PATH_TO_ATTR = {
    "external_id": "external_id", "type": "donor_type", "first_name": "first_name", "last_name": "last_name",
    "email": "email", "phone": "phone", "spouse_first_name": "spouse_first_name",
    "spouse_last_name": "spouse_last_name", "spouse_email": "spouse_email",
    "address.street": "address_street", "address.city": "address_city", "address.state": "address_state",
    "address.postal_code": "address_zip", "address.country": "address_country",
    "journey_stage": "journey_stage", "ai_classification": "ai_classification",
    "last_contact_time": "last_contact_at", "notes": "notes", "tags": "tags", "custom_fields": "custom_fields",
    "formal_salutation": "formal_salutation", "informal_salutation": "informal_salutation",
}


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def normalize(d: DonorFields, prefix: str, v: Violations, stages: set[str]) -> DonorFields:
    """Validate and normalize every field; violations are named `<prefix>.<field path>`."""
    p = f"{prefix}." if prefix else ""
    if d.donor_type not in DONOR_TYPES:
        v.add(f"{p}type", "must be DONOR_TYPE_INDIVIDUAL or DONOR_TYPE_COUPLE")
    out = DonorFields(donor_type=d.donor_type)
    out.external_id = _text(d.external_id)
    if out.external_id and len(out.external_id) > 200:
        v.add(f"{p}external_id", "must be at most 200 characters")
    for attr, path in (("first_name", "first_name"), ("last_name", "last_name")):
        val = (getattr(d, attr) or "").strip()
        if len(val) > MAX_NAME:
            v.add(f"{p}{path}", f"must be at most {MAX_NAME} characters")
        setattr(out, attr, val)
    out.email = email(d.email, f"{p}email", v)
    country = (d.address_country or "US").strip().upper()
    if not COUNTRY_RE.match(country):
        v.add(f"{p}address.country", "must be an ISO 3166-1 alpha-2 code such as US")
        country = "US"
    out.address_country = country
    out.phone = phone(d.phone, country, f"{p}phone", v)
    out.spouse_first_name = _text(d.spouse_first_name)
    out.spouse_last_name = _text(d.spouse_last_name)
    for attr in ("spouse_first_name", "spouse_last_name"):
        if len(getattr(out, attr) or "") > MAX_NAME:
            v.add(f"{p}{attr}", f"must be at most {MAX_NAME} characters")
    out.spouse_email = email(d.spouse_email, f"{p}spouse_email", v)
    if d.donor_type != COUPLE:
        for attr in ("spouse_first_name", "spouse_last_name", "spouse_email"):
            if getattr(d, attr):
                v.add(f"{p}{attr}", "is only for couples (type DONOR_TYPE_COUPLE)")
    for attr, path in (("address_street", "address.street"), ("address_city", "address.city"),
                       ("address_state", "address.state"), ("address_zip", "address.postal_code")):
        val = _text(getattr(d, attr))
        if val and len(val) > MAX_NAME:
            v.add(f"{p}{path}", f"must be at most {MAX_NAME} characters")
        setattr(out, attr, val)
    if not (out.first_name or out.last_name or out.email or out.external_id):
        v.add(f"{p}last_name", "a donor needs a name, an email or an external id")
    out.journey_stage = _text(d.journey_stage)
    if out.journey_stage and out.journey_stage not in stages:
        v.add(f"{p}journey_stage", f"is not a stage of the organization's journey ({', '.join(sorted(stages))})")
    out.ai_classification = _text(d.ai_classification)
    if len(out.ai_classification or "") > MAX_NAME:
        v.add(f"{p}ai_classification", f"must be at most {MAX_NAME} characters")
    out.last_contact_at = d.last_contact_at
    out.notes = d.notes or None
    if out.notes and len(out.notes) > MAX_NOTES_BYTES // 4 and len(out.notes.encode()) > MAX_NOTES_BYTES:
        v.add(f"{p}notes", f"must be at most {MAX_NOTES_BYTES} bytes (UTF-8)")
    tags: list[str] = []
    for i, tag in enumerate(d.tags or []):
        tag = tag.strip()
        if not tag or len(tag) > MAX_TAG:
            v.add(f"{p}tags[{i}]", f"must be 1-{MAX_TAG} characters")
        elif tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        v.add(f"{p}tags", f"at most {MAX_TAGS} tags")
    out.tags = tags
    out.custom_fields = dict(d.custom_fields or {})
    if out.custom_fields and len(json.dumps(out.custom_fields, separators=(",", ":"), ensure_ascii=False).encode()) > (
            MAX_CUSTOM_FIELDS_BYTES):
        v.add(f"{p}custom_fields", f"must be at most {MAX_CUSTOM_FIELDS_BYTES} bytes as JSON")
    names = names_of(out)
    for attr, derive in (("formal_salutation", salutations.formal), ("informal_salutation", salutations.informal)):
        value = salutations.stored(getattr(d, attr), derive(names))
        if value and len(value) > salutations.MAX_SALUTATION:
            v.add(f"{p}{attr}", f"must be at most {salutations.MAX_SALUTATION} characters")
        setattr(out, attr, value)
    return out


def names_of(d: Any) -> salutations.Names:
    """The names salutations are made of, from DonorFields or a stored donor (same attributes)."""
    return salutations.Names(
        first=d.first_name or "", last=d.last_name or "", spouse_first=d.spouse_first_name or "",
        spouse_last=d.spouse_last_name or "", couple=d.donor_type == COUPLE)


def salutations_of(d: Any) -> tuple[str, str]:
    """A stored donor's formal and informal salutation: its own, else derived."""
    names = names_of(d)
    return (d.formal_salutation or salutations.formal(names),
            d.informal_salutation or salutations.informal(names))
