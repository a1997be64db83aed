"""ai's event consumers and work queues: queue, routing keys and handler of each.

The research job queue is fed by ai itself (ai.research.requested, written through the outbox
in ResearchDonor's transaction). Its handler needs the service's providers, given at build time
(`JOBS.deps`, set by __main__.py's dependencies hook).
"""

from chassis.consumer import Subscription
from services.ai.consumers import classification_runs, email_jobs, members, research, whatsapp

JOBS = research.JOBS
EMAIL_JOBS = email_jobs.JOBS
ASSISTANT = whatsapp.ASSISTANT
BATCHES = classification_runs.BATCHES

SUBSCRIPTIONS = [
    # Few at a time: each job fetches pages and calls a model inside its transaction.
    Subscription(research.QUEUE, research.BINDINGS, research.JOBS.handle, prefetch=4),
    # comms' generation sessions: one job per donor; each holds a connection while it asks crm and comms.
    Subscription(email_jobs.QUEUE, email_jobs.BINDINGS, email_jobs.JOBS.handle, prefetch=8),
    # staff members' WhatsApp questions (comms' webhook): read-only answers, one reply each.
    Subscription(whatsapp.QUEUE, whatsapp.BINDINGS, whatsapp.ASSISTANT.handle, prefetch=4),
    # who is an active member (the assistant answers only active members' numbers)
    Subscription(members.QUEUE, members.BINDINGS, members.on_membership_event),
    # classification runs: one batch at a time per run (each batch publishes the next).
    Subscription(classification_runs.QUEUE, classification_runs.BINDINGS, classification_runs.BATCHES.handle,
                 prefetch=2),
]
