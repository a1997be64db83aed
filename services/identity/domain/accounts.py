"""Account rules: email, password, organization names and slugs."""

from __future__ import annotations

import re
import unicodedata

from email_validator import EmailNotValidError, validate_email

from chassis.errors import Violations
from services.identity.domain import passwords

PASSWORD_MIN = passwords.PASSWORD_MIN
PASSWORD_MAX = passwords.PASSWORD_MAX
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")


def normalize_email(value: str, field: str, violations: Violations) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        violations.add(field, str(exc))
        return ""


def check_password(password: str, field: str, violations: Violations, *, email: str = "",
                   first_name: str = "", last_name: str = "") -> None:
    """NIST SP 800-63B: length, not composition rules; no common passwords (see domain/passwords.py)."""
    passwords.check_password(password, field, violations, email=email, first_name=first_name, last_name=last_name)


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:63].strip("-") or "org"


def check_slug(slug: str, field: str, violations: Violations) -> None:
    if not SLUG_RE.match(slug):
        violations.add(field, "must be 3-63 lowercase letters, digits or hyphens, not starting or ending with one")
