"""System roles, the permission catalogue, and how a member's permissions are computed.

Permission strings are `<service>.<resource>.<verb>`; `*` and `<prefix>.*` are wildcards.
Every RPC declares the permission it needs in its proto (givance.options.v1.auth); the
catalogue below lists every one of them (a test compares it with the protos), and custom
roles and per-member overrides may only name catalogued permissions or wildcards over them.

A member's permissions: those of their role (a system role or a custom role of the
organization), plus the overrides' grants, minus the overrides' denials (a denial wins).
"""

from __future__ import annotations

from collections.abc import Iterable

from chassis.errors import Violations

OWNER = "owner"
ADMIN = "admin"
STAFF = "staff"
VIEWER = "viewer"
CUSTOM = "custom"  # the membership column's value when the role is a custom role (custom_role_id)

# Every member may manage their own account, MFA, sessions and staff profile.
SELF = "identity.self"

# Permissions no RPC declares but a service checks itself, on one resource: crm's document
# managers see and change every document, whatever its visibility and grants.
CHECKED_BY_SERVICES: tuple[str, ...] = ("crm.documents.manage",)

# Every permission an RPC declares, by service (kept equal to the protos by a test), and those
# checked by services themselves.
CATALOGUE: tuple[str, ...] = (
    "identity.self",
    "identity.organizations.read",
    "identity.organizations.write",
    "identity.members.read",
    "identity.members.write",
    "identity.roles.write",
    "identity.audit.read",
    "identity.service_accounts.read",
    "identity.service_accounts.write",
    "crm.donors.read",
    "crm.donors.write",
    "crm.donors.delete",
    "crm.donations.read",
    "crm.donations.write",
    "crm.journeys.read",
    "crm.journeys.write",
    "crm.projects.read",
    "crm.projects.write",
    "crm.lists.read",
    "crm.lists.write",
    "crm.todos.read",
    "crm.todos.write",
    "crm.insight.read",
    "crm.clients.read",
    "crm.clients.write",
    "crm.documents.read",
    "crm.documents.write",
    "crm.workflows.read",
    "crm.workflows.write",
    "crm.workflows.run",
    "comms.messages.send",
    "comms.messages.read",
    "comms.templates.read",
    "comms.templates.write",
    "comms.communications.read",
    "comms.communications.write",
    "comms.suppressions.read",
    "comms.suppressions.write",
    "comms.settings.read",
    "comms.settings.write",
    "comms.generation.read",
    "comms.generation.write",
    "comms.generation.jobs",
    "billing.plans.read",
    "billing.subscription.read",
    "billing.subscription.write",
    "billing.invoices.read",
    "billing.usage.read",
    "billing.gateways.read",
    "billing.gateways.write",
    "ai.settings.read",
    "ai.settings.write",
    "ai.memory.write",
    "ai.research.read",
    "ai.research.write",
    "ai.generation.write",
    "ai.classification.write",
    "ai.agents.read",
    "ai.agents.manage",
    "ai.agents.use",
    *CHECKED_BY_SERVICES,
)

# The platform's permissions (what affects every tenant: signing keys, KYC, the platform trail).
# Only a platform operator's token carries them (services/identity/handlers/platform.py); no
# role, override or service account may name them, and "*" does not cover them.
PLATFORM_PREFIX = "platform."
PLATFORM_PERMISSIONS: tuple[str, ...] = (
    "platform.signing_keys.rotate",
    "platform.kyc.review",
    "platform.audit.read",
    "platform.plans.write",
    "platform.invoices.write",
    "platform.ai_agents.write",
    "platform.organizations.read",
    "platform.organizations.suspend",
)

SYSTEM_ROLES: dict[str, tuple[str, ...]] = {
    # Everything, including ownership (only an owner grants or removes the owner role).
    OWNER: ("*",),
    # Everything an organization does, but not ownership (a rule, not a permission).
    ADMIN: ("identity.*", "crm.*", "comms.*", "ai.*", "billing.*"),
    # Works with donors and gifts; sees the organization and colleagues.
    STAFF: (
        SELF,
        "identity.organizations.read",
        "identity.members.read",
        "crm.donors.read",
        "crm.donors.write",
        "crm.donations.read",
        "crm.donations.write",
        "crm.projects.read",
        "crm.projects.write",
        "crm.lists.read",
        "crm.lists.write",
        "crm.journeys.read",
        "crm.todos.read",
        "crm.todos.write",
        "crm.insight.read",
        "crm.clients.read",
        "crm.clients.write",
        "crm.documents.read",
        "crm.documents.write",
        "crm.workflows.read",
        "crm.workflows.run",
        "comms.messages.send",
        "comms.messages.read",
        "comms.templates.read",
        "comms.communications.read",
        "comms.communications.write",
        "comms.suppressions.read",
        "comms.generation.read",
        "comms.generation.write",
        "billing.plans.read",
        "ai.settings.read",
        "ai.memory.write",
        "ai.research.read",
        "ai.research.write",
        "ai.generation.write",
        "ai.classification.write",
        "ai.agents.read",
        "ai.agents.use",
    ),
    # Reads only.
    VIEWER: (
        SELF,
        "identity.organizations.read",
        "identity.members.read",
        "crm.donors.read",
        "crm.donations.read",
        "crm.projects.read",
        "crm.journeys.read",
        "crm.todos.read",
        "crm.lists.read",
        "crm.insight.read",
        "crm.clients.read",
        "crm.documents.read",
        "crm.workflows.read",
        "comms.messages.read",
        "comms.templates.read",
        "comms.communications.read",
        "comms.generation.read",
        "ai.settings.read",
        "ai.research.read",
        "ai.agents.read",
    ),
}

SYSTEM_ROLE_DESCRIPTIONS: dict[str, str] = {
    OWNER: "Full control of the organization, including ownership",
    ADMIN: "Manages the organization, its members and roles, and all its data; not ownership",
    STAFF: ("Reads and writes donors, donations, projects, todos, donor lists, clients, contacts and documents; "
            "reads the donor journey"),
    VIEWER: "Reads the organization's data",
}

ROLE_NAME_MAX = 100
ROLE_DESCRIPTION_MAX = 1000
PERMISSIONS_MAX = 200


def permissions_for(role: str) -> tuple[str, ...]:
    """The permissions of a system role (nothing for anything else)."""
    return SYSTEM_ROLES.get(role, ())


def is_system_role(role: str) -> bool:
    return role in SYSTEM_ROLES


def _within(pattern: str, other: str) -> bool:
    """Whether every permission `other` names (a permission or a wildcard) lies within `pattern`."""
    if pattern == "*" or pattern == other:
        return True
    if pattern.endswith(".*"):
        return other != "*" and other.startswith(pattern[:-1])
    return False


def covers(pattern: str, other: str) -> bool:
    """Whether granting `pattern` grants `other` ("*" covers no platform permission)."""
    if other.startswith(PLATFORM_PREFIX) and pattern == "*":
        return False
    return _within(pattern, other)


def _is_known(permission: str) -> bool:
    if permission == "*":
        return True
    if permission.endswith(".*"):
        prefix = permission[:-1]
        return len(prefix) > 1 and any(p.startswith(prefix) for p in CATALOGUE)
    return permission in CATALOGUE


def clean_permissions(values: Iterable[str], field: str, v: Violations) -> list[str]:
    """Validated against the catalogue (wildcards over it allowed); trimmed, deduplicated, in order."""
    out: list[str] = []
    values = list(values)
    if len(values) > PERMISSIONS_MAX:
        v.add(field, f"must hold at most {PERMISSIONS_MAX} permissions")
        return out
    for i, raw in enumerate(values):
        p = raw.strip()
        if not p:
            v.add(f"{field}[{i}]", "must not be empty")
        elif p.startswith(PLATFORM_PREFIX):
            v.add(f"{field}[{i}]", f"{p!r} is a platform permission: only a platform operator holds it")
        elif not _is_known(p):
            v.add(f"{field}[{i}]", f"unknown permission {p!r}")
        elif p not in out:
            out.append(p)
    return out


def effective_permissions(base: Iterable[str], grant: Iterable[str] = (), deny: Iterable[str] = ()) -> tuple[str, ...]:
    """Role permissions + grants - denials; a denial always wins. Every member keeps
    identity.self (their own account, MFA and sessions, logging out): no role or denial can
    lock a member out of managing their own sign-in.

    A granted wildcard a denial only partly covers is expanded over the catalogue and the
    denied permissions are taken out; a denial never leaves a wildcard that still grants it.
    """
    deny = [d for d in deny if d]
    out: list[str] = []

    def add(p: str) -> None:
        if p not in out:
            out.append(p)

    for g in [*base, *grant]:
        if not g or any(_within(d, g) for d in deny):
            continue
        if any(_within(g, d) for d in deny):  # a wildcard partly denied: the catalogue's rest
            for p in CATALOGUE:
                if covers(g, p) and not any(_within(d, p) for d in deny):
                    add(p)
        else:
            add(g)
    if not holds(out, SELF):
        add(SELF)
    return tuple(out)


def holds(granted: Iterable[str], wanted: str) -> bool:
    """Whether a set of granted permissions covers `wanted` (a permission or a wildcard)."""
    return any(covers(g, wanted) for g in granted)


def check_role_name(name: str, field: str, v: Violations) -> str:
    name = " ".join(name.split())
    if v.check_text(field, name, ROLE_NAME_MAX, required=True) and (
            name.lower() in SYSTEM_ROLES or name.lower() == CUSTOM):
        v.add(field, f"{name!r} is the name of a system role")
    return name


def check_role_description(description: str, field: str, v: Violations) -> str:
    description = description.strip()
    v.check_text(field, description, ROLE_DESCRIPTION_MAX)
    return description
