"""ai: the service account an organization gives ai for its background jobs (email generation
sessions): client id and sealed secret, until the suite issues tenant service tokens itself.

Revision ID: 0003
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE ai.settings ADD COLUMN service_client_id text NOT NULL DEFAULT '', "
               "ADD COLUMN service_secret_sealed text")


def downgrade() -> None:
    op.execute("ALTER TABLE ai.settings DROP COLUMN service_client_id, DROP COLUMN service_secret_sealed")
