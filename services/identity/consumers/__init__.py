"""identity's event consumers: queue, routing keys and handler of each.

Declared by `python -m chassis.migrate` (from the SPEC in __main__.py) before any
service starts.
"""

from chassis.consumer import Subscription
from services.identity.consumers import audit, entitlements

SUBSCRIPTIONS: list[Subscription] = [
    Subscription(queue=audit.QUEUE, bindings=audit.BINDINGS, handler=audit.on_audit_recorded),
    Subscription(queue=entitlements.QUEUE, bindings=entitlements.BINDINGS,
                 handler=entitlements.on_entitlements_changed),
]
