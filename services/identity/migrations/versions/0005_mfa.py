"""MFA: a per-user brake on second-factor guessing.

A challenge allows five attempts, but whoever knows the password can ask for new challenges;
consecutive wrong codes (at login or on MfaService) are counted per user, and enough of them
lock code checks for a while.

Revision ID: 0005
"""

from alembic import op

from chassis.migrate import script

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(op, """
        ALTER TABLE identity.user_mfa
          ADD COLUMN failed_attempts integer NOT NULL DEFAULT 0,
          ADD COLUMN locked_until timestamptz;
    """)


def downgrade() -> None:
    script(op, """
        ALTER TABLE identity.user_mfa DROP COLUMN failed_attempts, DROP COLUMN locked_until;
    """)
