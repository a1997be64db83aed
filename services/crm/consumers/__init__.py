"""crm's event consumers: queue, routing keys and handler of each.

The queues are declared by `python -m chassis.migrate` (through migrations/topology.py)
before any service starts, so no event published in the meantime finds no queue.
"""

from chassis.consumer import Subscription
from services.crm.consumers import duplicates, members, organizations

SUBSCRIPTIONS = [
    Subscription(organizations.QUEUE, organizations.BINDINGS, organizations.on_organization_created),
    Subscription(members.QUEUE, members.BINDINGS, members.on_membership_event),
    # One batch at a time: a refresh of thousands of donors' pairs is heavy, and batches of one
    # import share pairs (concurrent refreshes would wait on each other's rows).
    Subscription(duplicates.QUEUE, duplicates.BINDINGS, duplicates.on_donors_imported, prefetch=1),
]
