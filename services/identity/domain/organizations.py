"""Organization rules: which fields an update may change, names, slugs, custom domains and the
web origins allowed to call the API from a browser (CORS)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from chassis.errors import Violations
from services.identity.domain import accounts as account_rules

# FieldMask paths an update may name (each is its own attribute; chassis.resource.expand_mask).
UPDATABLE = ("name", "slug", "domain", "mfa_required", "allowed_origins")
NAME_MAX = 200
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")


@dataclass(frozen=True)
class OrganizationFields:
    name: str
    slug: str
    domain: str | None
    mfa_required: bool
    allowed_origins: tuple[str, ...] = ()


def check_name(name: str, field: str, v: Violations, maximum: int = NAME_MAX) -> str:
    """A required name of at most `maximum` characters, trimmed (service accounts' names too)."""
    name = name.strip()
    v.check_text(field, name, maximum, required=True)
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


# CORS origins: few per organization (a front end, a staging copy, a developer's machine).
MAX_ORIGINS = 20
ORIGIN_MAX = 300
_LOOPBACK = {"localhost", "127.0.0.1", "[::1]"}
_ORIGIN = re.compile(r"^(https?)://([^/?#@:\[\]]+|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$")
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")


def normalize_origin(value: str, field: str, v: Violations) -> str | None:
    """An origin as a browser serialises it in the Origin header: scheme://host[:port], lower
    case, IDNA hostnames in their ASCII form, the scheme's default port left out.

    https only, but for a loopback host (a developer's front end on http://localhost:3000): a
    page served over plain http can be altered on the way, and it would run with the user's
    token. No wildcard (`https://*.example.org`): every subdomain, including one taken over or
    serving users' content, would read the API's answers; an organization lists its few front
    ends instead. No `null` (sandboxed frames, file: pages): anything can claim it.
    """
    raw = value.strip()
    if len(raw) > ORIGIN_MAX:
        v.add(field, f"must be at most {ORIGIN_MAX} characters")
        return None
    m = _ORIGIN.match(raw.lower().rstrip("/")) if raw.count("/") <= 3 else None
    if m is None:
        v.add(field, "must be an origin: scheme://host[:port] (https://app.example.org), no path or wildcard")
        return None
    scheme, host, port = m.groups()
    if not host.startswith("["):
        try:
            host = host.rstrip(".").encode("idna").decode("ascii")
        except UnicodeError:
            v.add(field, "has an invalid hostname")
            return None
        labels = host.split(".")
        if not (_IPV4.match(host) and all(int(p) < 256 for p in labels)) and host != "localhost" and (
                len(host) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels)
                or not _TLD.match(labels[-1])):
            v.add(field, "has an invalid hostname")
            return None
    if scheme == "http" and host not in _LOOPBACK and not host.startswith("127."):
        v.add(field, "must use https (http only for localhost)")
        return None
    if port is not None:
        number = int(port)
        if not 0 < number < 65536:
            v.add(field, "has an invalid port")
            return None
        port = None if number == (443 if scheme == "https" else 80) else str(number)
    return f"{scheme}://{host}" + (f":{port}" if port else "")


def check_origins(values: list[str], field: str, v: Violations) -> tuple[str, ...]:
    """The whole list, normalized, duplicates dropped (first kept), at most MAX_ORIGINS."""
    if len(values) > MAX_ORIGINS:
        v.add(field, f"at most {MAX_ORIGINS} origins")
        return ()
    out: list[str] = []
    for i, value in enumerate(values):
        origin = normalize_origin(value, f"{field}[{i}]", v)
        if origin is not None and origin not in out:
            out.append(origin)
    return tuple(out)
