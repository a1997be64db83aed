"""comms: double opt-in and replayable webhooks.

- consent_changes.pending: a grant waiting for the address' confirmation (double opt-in);
  detail keeps the evidence (where a change came from: the confirmation's request).
- email_events.webhook_event_id: the provider event an email event came from, once per event:
  a replayed webhook finds its effects applied and applies nothing twice.
- webhook_events.error and attempts: why processing a stored webhook failed, and how often it
  was tried (an operator replays it: python -m services.comms.replay).

Revision ID: 0002
"""

from alembic import op

from chassis.migrate import script

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(
        op,
        """
        ALTER TABLE comms.consent_changes
          ADD COLUMN pending boolean NOT NULL DEFAULT false,
          ADD COLUMN detail text NOT NULL DEFAULT '';
        CREATE INDEX consent_changes_pending ON comms.consent_changes (organization_id, message_id)
          WHERE pending;

        ALTER TABLE comms.email_events ADD COLUMN webhook_event_id uuid;
        CREATE UNIQUE INDEX email_events_webhook ON comms.email_events (organization_id, webhook_event_id)
          WHERE webhook_event_id IS NOT NULL;

        ALTER TABLE comms.webhook_events
          ADD COLUMN error text NOT NULL DEFAULT '',
          ADD COLUMN attempts integer NOT NULL DEFAULT 0;
        CREATE INDEX webhook_events_pending ON comms.webhook_events (created_at) WHERE processed_at IS NULL;
        """,
    )


def downgrade() -> None:
    script(op, """
        ALTER TABLE comms.webhook_events DROP COLUMN error, DROP COLUMN attempts;
        ALTER TABLE comms.email_events DROP COLUMN webhook_event_id;
        ALTER TABLE comms.consent_changes DROP COLUMN pending, DROP COLUMN detail;
    """)
