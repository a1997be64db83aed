"""How a person is reached, checked the same way for a donor, a client and a contact: a phone
number stored E.164 (phonenumbers) and an email address normalized (email-validator)."""

from __future__ import annotations

from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from chassis.errors import Violations

MAX_PHONE = 50  # characters as typed, before normalizing


def _text(value: Any) -> str | None:
    value = (value or "").strip() if isinstance(value, str) or value is None else value
    return value or None


def phone(value: Any, region: str, path: str, v: Violations) -> str | None:
    """`value` as E.164 (read in `region` when it has no country code); None when empty, or when
    it is not a valid number (a violation named `path`)."""
    value = _text(value)
    if value is None:
        return None
    if len(value) > MAX_PHONE:
        v.add(path, f"must be at most {MAX_PHONE} characters")
        return None
    try:
        number = phonenumbers.parse(value, region or "US")
    except phonenumbers.NumberParseException as exc:
        v.add(path, f"is not a phone number: {exc}")
        return None
    if not phonenumbers.is_valid_number(number):
        v.add(path, "is not a valid phone number")
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def email(value: Any, path: str, v: Violations) -> str | None:
    """`value` normalized; None when empty, or when it is not an address (a violation named `path`)."""
    value = _text(value)
    if value is None:
        return None
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        v.add(path, f"is not a valid email address: {exc}")
        return None
