"""An organization's life: active; suspended by a platform operator (and reactivated); closed by
its owner (closing, with a grace period before erasure, reopened within it).

    active --suspend--> suspended --reactivate--> active
    active --close--> closing --reopen (before erase_at)--> active
                      closing --erase_at passes--> erased (the organization is gone)

A suspended organization's calls are refused on every service and no token is issued for it;
a closing one works as before (its members may still export their data, and the owner reopen),
until it is erased.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from chassis.errors import FailedPrecondition, Violations

ACTIVE, SUSPENDED, CLOSING = "active", "suspended", "closing"
STATES = (ACTIVE, SUSPENDED, CLOSING)
REASON_MAX = 500
# How long a closed organization may be reopened before it is erased (Stripe and Google keep
# a closed account about a month).
GRACE = timedelta(days=30)

SUSPENDED_REASON = "ORGANIZATION_SUSPENDED"
# The label of an erased organization's revocation (chassis.revocation: refused for good).
ERASED_LABEL = "erased"


def check_reason(reason: str, field: str, v: Violations) -> str:
    reason = reason.strip()
    v.check_text(field, reason, REASON_MAX, required=True)
    return reason


def require_state(state: str, wanted: str, doing: str) -> None:
    """FAILED_PRECONDITION, ORGANIZATION_NOT_<WANTED>, unless the organization is `wanted`."""
    if state != wanted:
        raise FailedPrecondition(f"the organization is {state}: only an organization that is {wanted} can be {doing}",
                                 reason=f"ORGANIZATION_NOT_{wanted.upper()}", metadata={"state": state})


def refuse_if_suspended(state: str | None) -> None:
    """No token is issued for a suspended organization, nor for an erased one (state None)."""
    if state is None:
        raise FailedPrecondition("this organization was closed and erased", reason="ORGANIZATION_ERASED")
    if state == SUSPENDED:
        raise FailedPrecondition("this organization is suspended by the platform's operators",
                                 reason=SUSPENDED_REASON)


def may_reopen(state: str, erase_at: datetime | None, now: datetime) -> None:
    require_state(state, CLOSING, "reopened")
    if erase_at is not None and erase_at <= now:
        raise FailedPrecondition("the grace period is over: the organization is being erased",
                                 reason="GRACE_PERIOD_OVER")
