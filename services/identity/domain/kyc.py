"""Know-your-customer rules: what a submission must hold, and how a national id is shown.

A submission is whole (no field mask): date of birth, national id and its type, address,
city and country are required; the national id may be left empty to keep the one on file
(a client that read the account only ever saw it masked). Submitting makes the status
pending; a reviewer then verifies or rejects it, a rejection with a reason.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from chassis.errors import Violations
from services.identity.domain.phones import normalize_phone

PENDING = "pending"
VERIFIED = "verified"
REJECTED = "rejected"

NATIONAL_ID_TYPES = ("ssn", "pan", "passport", "national_id", "other")
MAX_AGE_YEARS = 130
MASK = "\u2022\u2022\u2022\u2022"  # ••••
REASON_MAX = 1000
URL_MAX = 2048

# ISO 3166-1 alpha-2, the 249 officially assigned codes.
ISO_COUNTRIES = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT
BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH
ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT
HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS
LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI
NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG
SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG
UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
""".split())

_ID_SEPARATORS = re.compile(r"[\s.\-/]+")
_ALNUM = re.compile(r"^[A-Z0-9]+$")
_SSN = re.compile(r"^(?!000|666|9)\d{3}(?!00)\d{2}(?!0000)\d{4}$")
_PAN = re.compile(r"^[A-Z]{5}[0-9]{4}[A-Z]$")
_POSTAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 \-]{0,18}[A-Za-z0-9]$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_TEXT_LIMITS = {
    "address": 500,
    "city": 100,
    "state": 100,
    "emergency_contact_name": 200,
    "emergency_contact_relation": 100,
}


@dataclass(frozen=True)
class KycInput:
    """A submission as the client sent it; date_of_birth is (year, month, day) or None if unset."""

    date_of_birth: tuple[int, int, int] | None
    national_id: str
    national_id_type: str
    address: str
    city: str
    state: str
    postal_code: str
    country: str
    emergency_contact_name: str
    emergency_contact_phone: str
    emergency_contact_relation: str
    id_document_url: str
    address_proof_url: str


@dataclass(frozen=True)
class KycDetails:
    """A valid submission, normalised. national_id is None when the one on file is kept."""

    date_of_birth: dt.date
    national_id: str | None
    national_id_type: str
    address: str
    city: str
    state: str
    postal_code: str
    country: str
    emergency_contact_name: str
    emergency_contact_phone: str
    emergency_contact_relation: str
    id_document_url: str
    address_proof_url: str

    @property
    def national_id_last4(self) -> str | None:
        return self.national_id[-4:] if self.national_id else None


def validate(k: KycInput, *, today: dt.date, id_on_file_type: str | None, violations: Violations,
             prefix: str = "kyc") -> KycDetails | None:
    """The normalised details, or None after adding every violation (field paths under `prefix`)."""
    v = violations
    before = len(v.items)

    def f(name: str) -> str:
        return f"{prefix}.{name}"

    dob = _date_of_birth(k.date_of_birth, today, f("date_of_birth"), v)

    id_type = k.national_id_type.strip().lower()
    if not id_type:
        v.add(f("national_id_type"), "is required")
    elif id_type not in NATIONAL_ID_TYPES:
        v.add(f("national_id_type"), f"must be one of {', '.join(NATIONAL_ID_TYPES)}")
    national_id: str | None = None
    if k.national_id.strip():
        national_id = _national_id(k.national_id, id_type, f("national_id"), v)
    elif id_on_file_type is None:
        v.add(f("national_id"), "is required")
    elif id_type in NATIONAL_ID_TYPES and id_type != id_on_file_type:
        v.add(f("national_id"), "is required when national_id_type changes")

    texts = {}
    for name, limit in _TEXT_LIMITS.items():
        value = getattr(k, name).strip()
        if len(value) > limit:
            v.add(f(name), f"must be at most {limit} characters")
        elif _CONTROL.search(value):
            v.add(f(name), "must not hold control characters")
        texts[name] = value
    for name in ("address", "city"):
        if not texts[name]:
            v.add(f(name), "is required")

    country = k.country.strip().upper()
    if not country:
        v.add(f("country"), "is required")
    elif country not in ISO_COUNTRIES:
        v.add(f("country"), "must be an ISO 3166-1 alpha-2 country code, e.g. US")
        country = ""

    postal = k.postal_code.strip()
    if postal and not _POSTAL.match(postal):
        v.add(f("postal_code"), "must be 2-20 letters, digits, spaces or hyphens")

    phone = normalize_phone(k.emergency_contact_phone, f("emergency_contact_phone"), v,
                            region=country or None, required=False)
    urls = {name: _url(getattr(k, name), f(name), v) for name in ("id_document_url", "address_proof_url")}

    if len(v.items) > before or dob is None:
        return None
    return KycDetails(
        date_of_birth=dob, national_id=national_id, national_id_type=id_type, address=texts["address"],
        city=texts["city"], state=texts["state"], postal_code=postal, country=country,
        emergency_contact_name=texts["emergency_contact_name"], emergency_contact_phone=phone,
        emergency_contact_relation=texts["emergency_contact_relation"], **urls,
    )


def _date_of_birth(ymd: tuple[int, int, int] | None, today: dt.date, field: str, v: Violations) -> dt.date | None:
    if ymd is None or ymd == (0, 0, 0):
        v.add(field, "is required")
        return None
    try:
        dob = dt.date(*ymd)
    except ValueError:
        v.add(field, "is not a valid date (year, month and day are all required)")
        return None
    if dob >= today:
        v.add(field, "must be in the past")
        return None
    if dob.year < today.year - MAX_AGE_YEARS:
        v.add(field, f"must be within the last {MAX_AGE_YEARS} years")
        return None
    return dob


def _national_id(raw: str, id_type: str, field: str, v: Violations) -> str | None:
    value = _ID_SEPARATORS.sub("", raw.strip()).upper()
    if not 4 <= len(value) <= 32 or not _ALNUM.match(value):
        v.add(field, "must be 4-32 letters or digits (spaces, dots and hyphens are ignored)")
        return None
    if id_type == "ssn" and not _SSN.match(value):
        v.add(field, "is not a valid US social security number")
        return None
    if id_type == "pan" and not _PAN.match(value):
        v.add(field, "is not a valid PAN (five letters, four digits, one letter)")
        return None
    if id_type == "passport" and not 5 <= len(value) <= 20:
        v.add(field, "is not a valid passport number (5-20 letters or digits)")
        return None
    return value


def _url(raw: str, field: str, v: Violations) -> str:
    value = raw.strip()
    if not value:
        return ""
    if len(value) > URL_MAX:
        v.add(field, f"must be at most {URL_MAX} characters")
        return ""
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc or _CONTROL.search(value) or " " in value:
        v.add(field, "must be an https URL")
        return ""
    return value


def mask(last4: str | None) -> str:
    """How a national id is shown: never in clear, only its last four characters."""
    return f"{MASK} {last4}" if last4 else ""


def check_review(status: str, reason: str, violations: Violations) -> str:
    """A reviewer's decision: verified, or rejected with a reason. Returns the reason to store."""
    reason = reason.strip()
    if status not in (VERIFIED, REJECTED):
        violations.add("status", "must be KYC_STATUS_VERIFIED or KYC_STATUS_REJECTED")
    elif status == REJECTED and not reason:
        violations.add("rejection_reason", "is required when rejecting")
    elif status == VERIFIED and reason:
        violations.add("rejection_reason", "must be empty when verifying")
    if len(reason) > REASON_MAX:
        violations.add("rejection_reason", f"must be at most {REASON_MAX} characters")
    return reason
