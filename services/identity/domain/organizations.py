"""Organization rules: which fields an update may change, names, slugs and custom domains."""

from __future__ import annotations

import re
from dataclasses import dataclass

from chassis.errors import Violations
from services.identity.domain import accounts as account_rules

UPDATABLE = ("name", "slug", "domain", "mfa_required")
NAME_MAX = 200
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")


@dataclass(frozen=True)
class OrganizationFields:
    name: str
    slug: str
    domain: str | None
    mfa_required: bool


def expand_mask(paths: list[str], field: str, v: Violations) -> list[str]:
    """Field-mask paths to fields; an empty mask means every updatable field (AIP-134)."""
    if not paths:
        return list(UPDATABLE)
    out: list[str] = []
    for p in paths:
        if p not in UPDATABLE:
            v.add(field, f"unknown or read-only field {p!r}; updatable: {', '.join(UPDATABLE)}")
        elif p not in out:
            out.append(p)
    return out


def check_name(name: str, field: str, v: Violations) -> str:
    name = name.strip()
    if not name:
        v.add(field, "is required")
    elif len(name) > NAME_MAX:
        v.add(field, f"must be at most {NAME_MAX} characters")
    return name


def check_slug(slug: str, field: str, v: Violations) -> str:
    slug = slug.strip()
    account_rules.check_slug(slug, field, v)
    return slug


def normalize_domain(value: str, field: str, v: Violations) -> str | None:
    """A custom domain is a fully qualified hostname (IDNA for non-ASCII); empty clears it."""
    value = value.strip().rstrip(".").lower()
    if not value:
        return None
    try:
        ascii_value = value.encode("idna").decode("ascii")
    except UnicodeError:
        v.add(field, "is not a valid hostname")
        return None
    labels = ascii_value.split(".")
    if len(ascii_value) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels) \
            or not _TLD.match(labels[-1]):
        v.add(field, "must be a hostname such as donate.example.org")
        return None
    return ascii_value
