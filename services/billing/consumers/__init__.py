"""billing's event consumers: queue, routing keys and handler of each."""

from chassis.consumer import Subscription
from services.billing.consumers import organizations, usage

SUBSCRIPTIONS = [
    Subscription(organizations.QUEUE, organizations.BINDINGS, organizations.on_organization_created),
    Subscription(usage.QUEUE, usage.BINDINGS, usage.on_usage_event),
]
