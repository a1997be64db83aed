"""System roles and the permissions they grant.

Permission strings are `<service>.<resource>.<verb>`; `*` and `<service>.*` are wildcards.
Every RPC declares the permission it needs in its proto (givance.options.v1.auth).
"""

from __future__ import annotations

OWNER = "owner"
ADMIN = "admin"
STAFF = "staff"
VIEWER = "viewer"

SYSTEM_ROLES: dict[str, tuple[str, ...]] = {
    OWNER: ("*",),
    ADMIN: ("identity.*", "crm.*", "comms.*", "ai.*", "billing.read"),
    STAFF: (
        "identity.organizations.read",
        "crm.donors.read",
        "crm.donors.write",
        "crm.donations.read",
        "crm.donations.write",
    ),
    VIEWER: ("identity.organizations.read", "crm.donors.read", "crm.donations.read"),
}


def permissions_for(role: str) -> tuple[str, ...]:
    return SYSTEM_ROLES.get(role, ())
