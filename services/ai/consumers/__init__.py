"""ai's event consumers and work queues: queue, routing keys and handler of each.

The research job queue is fed by ai itself (ai.research.requested, written through the outbox
in ResearchDonor's transaction). Its handler needs the service's providers, given at build time
(`JOBS.deps`, set by __main__.py's dependencies hook).
"""

from chassis.consumer import Subscription
from services.ai.consumers import email_jobs, research

JOBS = research.JOBS
EMAIL_JOBS = email_jobs.JOBS

SUBSCRIPTIONS = [
    # Few at a time: each job fetches pages and calls a model inside its transaction.
    Subscription(research.QUEUE, research.BINDINGS, research.JOBS.handle, prefetch=4),
    # comms' generation sessions: one job per donor; each holds a connection while it asks crm and comms.
    Subscription(email_jobs.QUEUE, email_jobs.BINDINGS, email_jobs.JOBS.handle, prefetch=8),
]
