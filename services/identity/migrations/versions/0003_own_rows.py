"""A user sees their own memberships and sessions across organizations (app.user_id).

Revision ID: 0003
"""

from alembic import op

from chassis.migrate import own_rows_policy

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    own_rows_policy(op, "identity.user_organizations")
    own_rows_policy(op, "identity.refresh_tokens")


def downgrade() -> None:
    op.execute("DROP POLICY own_rows ON identity.user_organizations")
    op.execute("DROP POLICY own_rows ON identity.refresh_tokens")
