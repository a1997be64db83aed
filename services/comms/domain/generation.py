"""Rules of AI email generation sessions: limits, the statuses and their moves, the HTML part of
a draft."""

from __future__ import annotations

import html

NAME_MAX = 200
DESCRIPTION_MAX = 2000
INSTRUCTIONS_MAX = 5000  # ai's GenerateDonorEmail limit
TEMPLATE_MAX = 20_000  # ai's GenerateDonorEmail limit
SIGNER_MAX = 200
DONORS_MAX = 5000
SUBJECT_MAX = 1000
BODY_MAX = 100_000
MODEL_MAX = 200
REASON_MAX = 1000
BATCH_MAX = 1000
GROUNDING_IDS_MAX = 200

# seed 000's statuses (sessions: configuring, generating, completed, cancelled; emails: draft,
# approved, scheduled, sent, failed) and 'rejected', a reviewer's refusal the seed has no word for.
SESSION_STATUSES = ("configuring", "generating", "completed", "cancelled")
EMAIL_STATUSES = ("draft", "approved", "scheduled", "sent", "failed", "rejected")
FINISHED = ("completed", "cancelled")
APPROVABLE = ("draft", "rejected")
REJECTABLE = ("draft", "approved")
EDITABLE = ("draft", "approved", "rejected")  # an edit brings it back to draft

# The work queue's event (comms' outbox -> ai's generation worker) and the system template that
# carries a generated email (an organization overrides it with a template of the same name).
JOB_REQUESTED = "comms.generation_job.requested"
SEND_TEMPLATE = "ai-email"
SOURCE_KEY = "generated-email:{}"


def html_of(plain: str) -> str:
    """The HTML part of a plain-text draft: escaped, paragraphs at blank lines, line breaks kept."""
    paragraphs = [p for p in plain.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "".join(f"<p>{html.escape(p.strip()).replace(chr(10), '<br>')}</p>" for p in paragraphs)


def why_not(action: str, status: str) -> str:
    return f"a {status} email cannot be {action}"
