"""comms' event consumers: queue, routing keys and handler of each.

The queues are declared by `python -m chassis.migrate` (from the SPEC in __main__.py) before
any service starts, so no event published in the meantime finds no queue.
"""

from chassis.consumer import Subscription
from services.comms.consumers import donations, identity, members, whatsapp

SUBSCRIPTIONS = [
    Subscription(identity.QUEUE, identity.BINDINGS, identity.on_identity_mail),
    Subscription(donations.QUEUE, donations.BINDINGS, donations.on_donation_recorded),
    Subscription(whatsapp.QUEUE, whatsapp.BINDINGS, whatsapp.on_reply_requested),
    Subscription(members.QUEUE, members.BINDINGS, members.on_membership_event),
]
