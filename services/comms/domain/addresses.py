"""Addresses comms sends to: email (validated, lowercased) and phone numbers (E.164)."""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from chassis.errors import Violations

ADDRESS_MAX = 320


def email(value: str, field: str, v: Violations) -> str:
    value = value.strip()
    if len(value) > ADDRESS_MAX:
        v.add(field, f"must be at most {ADDRESS_MAX} characters")
        return ""
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        v.add(field, f"is not a valid email address: {exc}")
        return ""


def phone(value: str, field: str, v: Violations) -> str:
    try:
        parsed = phonenumbers.parse(value.strip(), None)
        if not phonenumbers.is_valid_number(parsed):
            raise ValueError
    except (phonenumbers.NumberParseException, ValueError):
        v.add(field, "is not a valid phone number in international form (+<country><number>)")
        return ""
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def for_channel(channel: str, value: str, field: str, v: Violations) -> str:
    return email(value, field, v) if channel == "email" else phone(value, field, v)
