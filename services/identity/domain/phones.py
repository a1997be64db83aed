"""Phone numbers: any common format in, E.164 out (phonenumbers)."""

from __future__ import annotations

import phonenumbers

from chassis.errors import Violations

MAX_INPUT = 40


def normalize_phone(value: str, field: str, violations: Violations, *, region: str | None = None,
                    required: bool = True) -> str:
    """The number as E.164 (`+14155550100`), or "" after adding a violation on `field`.

    A number without a leading + is read as a number of `region` (an ISO country code) when
    one is known; otherwise it must carry its country code.
    """
    value = value.strip()
    if not value:
        if required:
            violations.add(field, "is required")
        return ""
    if len(value) > MAX_INPUT:
        violations.add(field, f"must be at most {MAX_INPUT} characters")
        return ""
    try:
        number = phonenumbers.parse(value, None if value.startswith("+") else region)
    except phonenumbers.NumberParseException:
        hint = "" if region else " (start with + and the country code)"
        violations.add(field, f"is not a phone number{hint}")
        return ""
    if not phonenumbers.is_valid_number(number):
        violations.add(field, "is not a valid phone number")
        return ""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
