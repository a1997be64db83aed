"""Each audit entry is stored once, however it was batched: unique (occurred_at, event_id).

Revision ID: 0008
"""

from alembic import op

revision = "0008"
down_revision = ("0005", "0006", "0007")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE UNIQUE INDEX activity_logs_entry ON identity.activity_logs (occurred_at, event_id) "
               "WHERE event_id IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX identity.activity_logs_entry")
