"""identity's event consumers: queue, routing keys and handler of each.

Declared by `python -m chassis.migrate` (through migrations/topology.py) before any
service starts.
"""

from chassis.consumer import Subscription
from services.identity.consumers import audit

SUBSCRIPTIONS: list[Subscription] = [
    Subscription(queue=audit.QUEUE, bindings=audit.BINDINGS, handler=audit.on_audit_recorded),
]
