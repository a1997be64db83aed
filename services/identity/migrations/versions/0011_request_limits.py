"""Rate limits on what sends a user a link or a code (password reset, email verification, phone
codes): one counter per key and fixed window, shared by every replica.

Revision ID: 0011
"""

from alembic import op

from chassis.migrate import script

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(op, """
        CREATE TABLE identity.request_limits (
          key text PRIMARY KEY,
          window_start timestamptz NOT NULL DEFAULT now(),
          count integer NOT NULL DEFAULT 0,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX request_limits_window ON identity.request_limits (window_start);
    """)


def downgrade() -> None:
    op.execute("DROP TABLE identity.request_limits")
