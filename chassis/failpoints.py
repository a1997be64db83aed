"""Failpoints: named places where a fault-injection test can kill this process on purpose.

    GIVANCE_FAILPOINTS=relay.after_confirm python -m services.crm

arms `relay.after_confirm`: the process SIGKILLs itself the first time it passes there (after
the broker confirmed a batch, before the relay marked it sent). Nothing is armed unless the
variable names it; an unarmed failpoint costs one set lookup. Used by tests/faults only.
"""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger(__name__)

_ARMED = frozenset(filter(None, (p.strip() for p in os.environ.get("GIVANCE_FAILPOINTS", "").split(","))))

RELAY_AFTER_CONFIRM = "relay.after_confirm"
CONSUMER_AFTER_COMMIT = "consumer.after_commit"


def hit(name: str) -> None:
    if name in _ARMED:
        log.warning("failpoint %s: killing this process (pid %d)", name, os.getpid())
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)
