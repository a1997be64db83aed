"""identity's event consumers: queue, routing keys and handler of each.

Declared by `python -m chassis.migrate` (through migrations/topology.py) before any
service starts.
"""

from chassis.consumer import Subscription

SUBSCRIPTIONS: list[Subscription] = []
