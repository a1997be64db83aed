"""Profiles (seed 002): an organization's (description, logo, website, industry, company size,
contact email and phone, address, timezone, tax id, registration number) and a user's
(username, avatar, country). Each field has a size limit; bad input names its field.

Text is trimmed; an empty value clears a field. URLs are absolute http(s) (a logo or avatar:
https, since a browser shows it inside an https page); phone numbers are stored E.164
(read in the address's country when they carry no +); a country is an ISO 3166-1 alpha-2
code, upper case; a timezone an IANA name (`Europe/Paris`). A tax id is sealed at rest and
only ever shown masked (its last four characters).
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import phonenumbers

from chassis.errors import Violations
from services.identity.domain import accounts as account_rules
from services.identity.domain.phones import normalize_phone

DESCRIPTION_MAX = 2000
URL_MAX = 500
SHORT_MAX = 100
LINE_MAX = 200
POSTAL_MAX = 20
TAX_ID_MIN, TAX_ID_MAX = 4, 50
EMAIL_MAX = 254
COMPANY_SIZES = ("startup", "sme", "enterprise")
MASK = "\u2022\u2022\u2022\u2022"  # ••••
USERNAME = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{1,28}[a-z0-9])$", re.IGNORECASE)

# FieldMask paths of an organization's profile (each its own column).
ORGANIZATION_FIELDS = ("description", "logo_url", "website", "industry", "company_size", "contact_email",
                       "contact_phone", "address", "timezone", "tax_id", "registration_number")
ADDRESS_FIELDS = ("line1", "line2", "city", "region", "postal_code", "country_code")
# FieldMask paths of a user's own account (UpdateAccount).
ACCOUNT_FIELDS = ("first_name", "last_name", "username", "avatar_url", "country_code")
NAME_MAX = 100


@dataclass(frozen=True)
class Address:
    line1: str = ""
    line2: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country_code: str = ""

    def as_json(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in ADDRESS_FIELDS if getattr(self, k)}

    @classmethod
    def from_json(cls, value: dict | None) -> Address:
        return cls(**{k: str(v) for k, v in (value or {}).items() if k in ADDRESS_FIELDS})


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def text(value: str, field: str, maximum: int, v: Violations) -> str:
    value = " ".join(value.split()) if maximum <= LINE_MAX else value.strip()
    v.check_text(field, value, maximum)
    return value


def url(value: str, field: str, v: Violations, *, https_only: bool = False) -> str:
    value = value.strip()
    if not value or not v.check_text(field, value, URL_MAX):
        return value
    parts = urlsplit(value)
    schemes = ("https",) if https_only else ("http", "https")
    if parts.scheme.lower() not in schemes or not parts.hostname or any(c.isspace() for c in value):
        v.add(field, f"must be an absolute {' or '.join(schemes)} URL")
    return value


def country(value: str, field: str, v: Violations) -> str:
    value = value.strip().upper()
    if value and value not in phonenumbers.SUPPORTED_REGIONS:
        v.add(field, "must be an ISO 3166-1 alpha-2 country code such as US or FR")
    return value


def timezone(value: str, field: str, v: Violations) -> str:
    value = value.strip() or "UTC"
    if len(value) > SHORT_MAX or value not in _zones():
        v.add(field, "must be an IANA timezone such as Europe/Paris or UTC")
    return value


def email(value: str, field: str, v: Violations) -> str:
    value = value.strip()
    if not value or not v.check_text(field, value, EMAIL_MAX):
        return value
    return account_rules.normalize_email(value, field, v)


def address(value: Address, field: str, v: Violations) -> Address:
    limits = {"line1": LINE_MAX, "line2": LINE_MAX, "city": SHORT_MAX, "region": SHORT_MAX,
              "postal_code": POSTAL_MAX}
    clean = {k: text(getattr(value, k), f"{field}.{k}", n, v) for k, n in limits.items()}
    return Address(**clean, country_code=country(value.country_code, f"{field}.country_code", v))


def tax_id(value: str, field: str, v: Violations) -> str:
    """The tax id to seal (spaces removed), or "" to clear it."""
    value = "".join(value.split())
    if value and not TAX_ID_MIN <= len(value) <= TAX_ID_MAX:
        v.add(field, f"must be {TAX_ID_MIN}-{TAX_ID_MAX} characters")
    return value


def mask(last4: str | None) -> str:
    return f"{MASK} {last4}" if last4 else ""


def check_organization(raw: dict[str, Any], fields: list[str], prefix: str, v: Violations) -> dict[str, Any]:
    """The masked fields' clean values, by column (tax_id still clear: the handler seals it)."""
    out: dict[str, Any] = {}
    p = f"{prefix}."
    addr = address(raw["address"], f"{p}address", v) if "address" in fields else None
    for f in fields:
        value = raw[f]
        if f == "description":
            out[f] = text(value, p + f, DESCRIPTION_MAX, v)
        elif f in ("industry", "registration_number"):
            out[f] = text(value, p + f, SHORT_MAX, v)
        elif f in ("website", "logo_url"):
            out[f] = url(value, p + f, v, https_only=f == "logo_url")
        elif f == "company_size":
            if value and value not in COMPANY_SIZES:
                v.add(p + f, f"must be one of {', '.join(COMPANY_SIZES)}")
            out[f] = value
        elif f == "contact_email":
            out[f] = email(value, p + f, v)
        elif f == "contact_phone":
            region = (addr.country_code if addr else raw.get("country_code")) or None
            out[f] = normalize_phone(value, p + f, v, region=region, required=False) if value.strip() else ""
        elif f == "address":
            out[f] = addr
        elif f == "timezone":
            out[f] = timezone(value, p + f, v)
        elif f == "tax_id":
            out[f] = tax_id(value, p + f, v)
    return out


def check_account(raw: dict[str, str], fields: list[str], prefix: str, v: Violations) -> dict[str, str]:
    out: dict[str, str] = {}
    p = f"{prefix}."
    for f in fields:
        value = raw[f]
        if f in ("first_name", "last_name"):
            out[f] = text(value, p + f, NAME_MAX, v)
        elif f == "username":
            value = value.strip()
            if value and not USERNAME.match(value):
                v.add(p + f, "must be 3-30 letters, digits, dots, hyphens or underscores, "
                             "starting and ending with a letter or digit")
            out[f] = value
        elif f == "avatar_url":
            out[f] = url(value, p + f, v, https_only=True)
        elif f == "country_code":
            out[f] = country(value, p + f, v)
    return out
