"""Account rules: email, password, organization names and slugs."""

from __future__ import annotations

import re
import unicodedata

from email_validator import EmailNotValidError, validate_email

from chassis.errors import Violations

PASSWORD_MIN = 12
PASSWORD_MAX = 256
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")


def normalize_email(value: str, field: str, violations: Violations) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        violations.add(field, str(exc))
        return ""


def check_password(password: str, field: str, violations: Violations) -> None:
    """NIST SP 800-63B: length, not composition rules."""
    if len(password) < PASSWORD_MIN:
        violations.add(field, f"must be at least {PASSWORD_MIN} characters")
    elif len(password) > PASSWORD_MAX:
        violations.add(field, f"must be at most {PASSWORD_MAX} characters")


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:63].strip("-") or "org"


def check_slug(slug: str, field: str, violations: Violations) -> None:
    if not SLUG_RE.match(slug):
        violations.add(field, "must be 3-63 lowercase letters, digits or hyphens, not starting or ending with one")
