"""The broker side of identity's schema: its consumers' queues, declared by chassis.migrate."""

from services.identity.consumers import SUBSCRIPTIONS  # noqa: F401 - read by chassis.migrate
