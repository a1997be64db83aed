"""crm's event consumers: queue, routing keys and handler of each.

The queues are declared by `python -m chassis.migrate` (from the SPEC in __main__.py)
before any service starts, so no event published in the meantime finds no queue.
"""

from chassis.consumer import Subscription
from services.crm.consumers import (
    billing,
    contacts,
    duplicates,
    email_status,
    members,
    organizations,
    workflow_triggers,
)

SUBSCRIPTIONS = [
    Subscription(organizations.QUEUE, organizations.BINDINGS, organizations.on_organization_created),
    Subscription(members.QUEUE, members.BINDINGS, members.on_membership_event),
    Subscription(billing.ENTITLEMENTS_QUEUE, billing.ENTITLEMENTS_BINDINGS, billing.on_entitlements_changed),
    Subscription(billing.GIFTS_QUEUE, billing.GIFTS_BINDINGS, billing.on_payment_event),
    Subscription(contacts.QUEUE, contacts.BINDINGS, contacts.on_communication_logged),
    Subscription(email_status.QUEUE, email_status.BINDINGS, email_status.on_email_event),
    # One batch at a time: a refresh of thousands of donors' pairs is heavy, and batches of one
    # import share pairs (concurrent refreshes would wait on each other's rows).
    Subscription(duplicates.QUEUE, duplicates.BINDINGS, duplicates.on_donors_imported, prefetch=1),
    Subscription(workflow_triggers.QUEUE, workflow_triggers.BINDINGS, workflow_triggers.on_event),
]
