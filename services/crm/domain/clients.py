"""Client and contact rules: what a valid client or contact holds, masking the tax id, merging
duplicate contacts.

Fields travel as plain dicts keyed by their API names (the FieldMask paths); `normalize_*`
checks them and returns the stored values (column names). A value that could not even be read
(an unknown enum, impossible money) arrives in `problems` as path -> description.
"""

from __future__ import annotations

import json
import re
import uuid
from decimal import Decimal
from typing import Any

from chassis.errors import Violations
from services.crm.domain.contact_points import email, phone

CLIENT_TYPES = ("individual", "business", "nonprofit")
CLIENT_STATUSES = ("active", "inactive", "prospect")
PAYMENT_TERMS = ("due_on_receipt", "net_15", "net_30", "net_45", "net_60", "net_90")
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
MAX_NAME = 300
MAX_PERSON_NAME = 100
MAX_SHORT = 100
MAX_MEDIUM = 200
MAX_NUMBER = 50
MAX_TAX_ID = 50
MAX_URL = 500
MAX_NOTES = 20_000
MAX_TAGS = 50
MAX_TAG = 50
MAX_JSON_BYTES = 16 * 1024
MAX_QUERY = 200
CREDIT_LIMIT_MAX = Decimal("9999999999.99")
MASK = "••••"
NOT_AN_ACTIVE_MEMBER = "is not an active member of the organization"

# The writable client fields (API path -> the stored columns it sets).
CLIENT_PATHS: dict[str, tuple[str, ...]] = {
    "name": ("name",), "company_name": ("company_name",), "client_type": ("client_type",),
    "industry": ("industry",), "client_number": ("client_number",), "email": ("email",), "phone": ("phone",),
    "website": ("website",), "address": ("address",), "tax_id": ("tax_id",),
    "registration_number": ("registration_number",), "fiscal_year_end_month": ("fiscal_year_end_month",),
    "status": ("status",), "acquisition_source": ("acquisition_source",), "referral_source": ("referral_source",),
    "assigned_manager_id": ("assigned_manager",), "communication_preferences": ("communication_preferences",),
    "service_preferences": ("service_preferences",), "billing_address": ("billing_address",),
    "payment_terms": ("payment_terms",), "credit_limit": ("credit_limit", "credit_limit_currency"),
}
CONTACT_PATHS: dict[str, tuple[str, ...]] = {
    name: (name,) for name in (
        "client_id", "first_name", "last_name", "job_title", "department", "email", "phone", "mobile",
        "is_primary", "can_authorize", "receives_communications", "notes", "tags")
}
# Audited and published: never the tax id in clear.
CLIENT_COLUMNS = tuple(c for cols in CLIENT_PATHS.values() for c in cols if c != "tax_id")


def text(value: Any) -> str | None:
    value = (value or "").strip() if isinstance(value, str) or value is None else value
    return value or None


def bounded(value: Any, maximum: int, path: str, v: Violations) -> str | None:
    out = text(value)
    if out is not None and len(out) > maximum:
        v.add(path, f"must be at most {maximum} characters")
    return out


def user_id(value: Any, path: str, v: Violations) -> str | None:
    value = text(value)
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        v.add(path, "is not a valid id")
        return None


def address(value: dict | None, path: str, v: Violations) -> dict:
    """street, city, state, postal_code (at most 300 characters each), country (ISO alpha-2, US)."""
    value = value or {}
    out: dict[str, str] = {}
    for key in ("street", "city", "state", "postal_code"):
        val = bounded(value.get(key), MAX_NAME, f"{path}.{key}", v)
        if val:
            out[key] = val
    country = (value.get("country") or "US").strip().upper()
    if not COUNTRY_RE.match(country):
        v.add(f"{path}.country", "must be an ISO 3166-1 alpha-2 code such as US")
    out["country"] = country
    return out


def json_object(value: dict | None, path: str, v: Violations) -> dict:
    value = dict(value or {})
    if len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()) > MAX_JSON_BYTES:
        v.add(path, f"must be at most {MAX_JSON_BYTES} bytes as JSON")
    return value


def tags(values: list[str] | None, path: str, v: Violations) -> list[str]:
    out: list[str] = []
    for i, tag in enumerate(values or []):
        tag = tag.strip()
        if not tag or len(tag) > MAX_TAG:
            v.add(f"{path}[{i}]", f"must be 1-{MAX_TAG} characters")
        elif tag not in out:
            out.append(tag)
    if len(out) > MAX_TAGS:
        v.add(path, f"at most {MAX_TAGS} tags")
    return out


def normalize_client(raw: dict[str, Any], prefix: str, v: Violations) -> dict[str, Any]:
    """Every writable client field checked; the stored columns (without the tax id, see
    `check_tax_id`)."""
    p = f"{prefix}."
    for path, description in raw.get("problems", {}).items():
        v.add(path, description)
    out: dict[str, Any] = {}
    name = " ".join((raw.get("name") or "").split())
    if not name:
        v.add(f"{p}name", "is required")
    elif len(name) > MAX_NAME:
        v.add(f"{p}name", f"must be at most {MAX_NAME} characters")
    out["name"] = name
    out["company_name"] = bounded(raw.get("company_name"), MAX_NAME, f"{p}company_name", v)
    out["client_type"] = raw.get("client_type") or "individual"
    out["industry"] = bounded(raw.get("industry"), MAX_SHORT, f"{p}industry", v)
    out["client_number"] = bounded(raw.get("client_number"), MAX_NUMBER, f"{p}client_number", v)
    out["email"] = email(raw.get("email"), f"{p}email", v)
    out["address"] = address(raw.get("address"), f"{p}address", v)
    out["phone"] = phone(raw.get("phone"), out["address"]["country"], f"{p}phone", v)
    out["website"] = bounded(raw.get("website"), MAX_URL, f"{p}website", v)
    if out["website"] and not URL_RE.match(out["website"]):
        v.add(f"{p}website", "must be an http(s) URL")
    out["registration_number"] = bounded(raw.get("registration_number"), MAX_SHORT, f"{p}registration_number", v)
    month = raw.get("fiscal_year_end_month") or 0
    if not 0 <= month <= 12:
        v.add(f"{p}fiscal_year_end_month", "must be 1-12 (or 0: unknown)")
    out["fiscal_year_end_month"] = month or None
    out["status"] = raw.get("status") or "active"
    out["acquisition_source"] = bounded(raw.get("acquisition_source"), MAX_MEDIUM, f"{p}acquisition_source", v)
    out["referral_source"] = bounded(raw.get("referral_source"), MAX_MEDIUM, f"{p}referral_source", v)
    out["assigned_manager"] = user_id(raw.get("assigned_manager_id"), f"{p}assigned_manager_id", v)
    out["communication_preferences"] = json_object(raw.get("communication_preferences"),
                                                   f"{p}communication_preferences", v)
    out["service_preferences"] = json_object(raw.get("service_preferences"), f"{p}service_preferences", v)
    billing = raw.get("billing_address")
    out["billing_address"] = address(billing, f"{p}billing_address", v) if billing else None
    out["payment_terms"] = raw.get("payment_terms") or "net_30"
    limit = raw.get("credit_limit")  # (Decimal, currency) or None
    out["credit_limit"], out["credit_limit_currency"] = None, None
    if limit is not None:
        amount, currency = limit
        if not COUNTRY_RE.match(currency[:2]) or not re.match(r"^[A-Z]{3}$", currency):
            v.add(f"{p}credit_limit.currency_code", "must be an ISO 4217 code such as USD")
        elif amount < 0 or amount > CREDIT_LIMIT_MAX:
            v.add(f"{p}credit_limit", f"must be between 0 and {CREDIT_LIMIT_MAX}")
        elif amount != amount.quantize(Decimal("0.01")):
            v.add(f"{p}credit_limit", "must have at most two decimal places")
        else:
            out["credit_limit"], out["credit_limit_currency"] = amount.quantize(Decimal("0.01")), currency
    return out


def check_tax_id(value: str, path: str, v: Violations) -> str | None:
    """The tax id to seal (spaces removed), or None to clear it."""
    value = "".join((value or "").split())
    if not value:
        return None
    if len(value) > MAX_TAX_ID:
        v.add(path, f"must be at most {MAX_TAX_ID} characters")
        return None
    if len(value) < 4:
        v.add(path, "must be at least 4 characters")
        return None
    return value


def tax_id_last4(value: str) -> str:
    return value[-4:]


def mask(last4: str | None) -> str:
    """How a tax id is shown: never in clear, only its last four characters."""
    return f"{MASK} {last4}" if last4 else ""


def normalize_contact(raw: dict[str, Any], prefix: str, v: Violations) -> dict[str, Any]:
    p = f"{prefix}."
    out: dict[str, Any] = {}
    for attr in ("first_name", "last_name"):
        val = " ".join((raw.get(attr) or "").split())
        if not val:
            v.add(f"{p}{attr}", "is required")
        elif len(val) > MAX_PERSON_NAME:
            v.add(f"{p}{attr}", f"must be at most {MAX_PERSON_NAME} characters")
        out[attr] = val
    out["client_id"] = user_id(raw.get("client_id"), f"{p}client_id", v)
    for attr in ("job_title", "department"):
        out[attr] = bounded(raw.get(attr), MAX_MEDIUM, f"{p}{attr}", v)
    out["email"] = email(raw.get("email"), f"{p}email", v)
    for attr in ("phone", "mobile"):
        out[attr] = phone(raw.get(attr), "US", f"{p}{attr}", v)
    out["is_primary"] = bool(raw.get("is_primary"))
    if out["is_primary"] and not out["client_id"]:
        v.add(f"{p}is_primary", "only a contact of a client can be its primary contact (set client_id)")
    out["can_authorize"] = bool(raw.get("can_authorize"))
    out["receives_communications"] = bool(raw.get("receives_communications", True))
    notes = raw.get("notes") or None
    if notes and len(notes) > MAX_NOTES:
        v.add(f"{p}notes", f"must be at most {MAX_NOTES} characters")
    out["notes"] = notes
    out["tags"] = tags(raw.get("tags"), f"{p}tags", v)
    return out


def search_words(query: str, path: str, v: Violations) -> list[str]:
    query = (query or "").strip()
    if len(query) > MAX_QUERY:
        v.add(path, f"must be at most {MAX_QUERY} characters")
        return []
    return [w.lower() for w in query.split()][:10]


def merge_contacts(survivor: dict[str, Any], duplicate: dict[str, Any]) -> dict[str, Any]:
    """The survivor's values after folding the duplicate in: its own where it has one, the
    duplicate's where it has none; tags united; notes joined; flags or-ed (a primary stays with
    the survivor only if it was already primary or shares the duplicate's client)."""
    out = dict(survivor)
    for attr in ("job_title", "department", "email", "phone", "mobile", "client_id"):
        if not out.get(attr) and duplicate.get(attr):
            out[attr] = duplicate[attr]
    out["tags"] = list(dict.fromkeys([*(survivor.get("tags") or []), *(duplicate.get("tags") or [])]))[:MAX_TAGS]
    notes = [n for n in (survivor.get("notes"), duplicate.get("notes")) if n]
    out["notes"] = "\n\n".join(notes)[:MAX_NOTES] or None
    out["can_authorize"] = bool(survivor.get("can_authorize") or duplicate.get("can_authorize"))
    out["receives_communications"] = bool(survivor.get("receives_communications")
                                          or duplicate.get("receives_communications"))
    out["is_primary"] = bool(survivor.get("is_primary") or (
        duplicate.get("is_primary") and str(duplicate.get("client_id")) == str(out.get("client_id"))))
    return out
