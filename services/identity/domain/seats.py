"""Seats: how many members (and pending invitations) the organization's plan allows."""

from __future__ import annotations

from chassis.errors import ResourceExhausted

UNLIMITED = -1


def check_seat(limit: int, taken: int, plan_code: str) -> None:
    """RESOURCE_EXHAUSTED (reason PLAN_LIMIT_EXCEEDED, limit "seats") when no seat is left."""
    if limit == UNLIMITED or taken < limit:
        return
    raise ResourceExhausted(f"the {plan_code} plan allows {limit} seats; {taken} are taken (members and pending "
                            "invitations)", reason="PLAN_LIMIT_EXCEEDED",
                            metadata={"limit": "seats", "maximum": str(limit), "current": str(taken),
                                      "plan": plan_code})
