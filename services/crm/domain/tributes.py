"""Tribute rules: a gift in honour or memory of someone (the honoree), and whom comms tells of
it (a name with an email address, a postal address, or both)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from chassis.errors import Violations

from . import contact_points

KINDS = ("honor", "memory")
MAX_LINE = 200
MAX_MESSAGE = 2000


@dataclass(frozen=True)
class Tribute:
    kind: str | None
    honoree_name: str
    notify_name: str | None = None
    notify_email: str | None = None
    notify_street: str | None = None
    notify_city: str | None = None
    notify_state: str | None = None
    notify_postal_code: str | None = None
    notify_country: str | None = None
    message: str | None = None


def check(t: Tribute, path: str, v: Violations) -> Tribute:
    """The tribute trimmed, its email normalized (violations named `<path>.<field>`)."""
    clean = replace(t, **{f.name: (getattr(t, f.name) or "").strip() or None for f in fields(t) if f.name != "kind"})
    if clean.kind not in KINDS:
        v.add(f"{path}.kind", "is required: honor or memory")
    v.check_text(f"{path}.honoree_name", clean.honoree_name or "", MAX_LINE, required=True)
    for f in fields(clean):
        if f.name.startswith("notify_") and f.name != "notify_email":
            v.check_text(f"{path}.{f.name}", getattr(clean, f.name) or "", MAX_LINE)
    v.check_text(f"{path}.message", clean.message or "", MAX_MESSAGE)
    email = None
    if clean.notify_email:
        if len(clean.notify_email) > 320:
            v.add(f"{path}.notify_email", "must be at most 320 characters")
        else:
            email = contact_points.email(clean.notify_email, f"{path}.notify_email", v)
    return replace(clean, notify_email=email)
