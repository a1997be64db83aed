"""The broker side of crm's schema: its consumers' queues, declared by chassis.migrate."""

from services.crm.consumers import SUBSCRIPTIONS  # noqa: F401 - read by chassis.migrate
