"""What the organization's plan allows crm to hold (a replica of billing's entitlements)."""

from __future__ import annotations

from chassis.errors import ResourceExhausted

UNLIMITED = -1


def check_room(limit: int, used: int, adding: int, what: str, plan_code: str) -> None:
    """RESOURCE_EXHAUSTED (reason PLAN_LIMIT_EXCEEDED, the limit named in its metadata) when
    `adding` more would pass the plan's limit; -1 is unlimited."""
    if limit == UNLIMITED or used + adding <= limit:
        return
    raise ResourceExhausted(f"the {plan_code} plan allows {limit} {what}; the organization has {used}",
                            reason="PLAN_LIMIT_EXCEEDED",
                            metadata={"limit": what, "maximum": str(limit), "current": str(used), "plan": plan_code})
