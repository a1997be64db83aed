"""comms: a replica of who is an active member of each organization (chassis.members, kept by
the comms.members consumer from identity's events), against which a generation session's signer
is checked; and the index ListEmailGenerationSessions pages on (newest first, by status).

Revision ID: 0004
"""

from alembic import op

from chassis import members

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    members.create_table(op, "comms")
    op.execute("CREATE INDEX sessions_org_created ON comms.email_generation_sessions "
               "(organization_id, created_at DESC, id DESC)")


def downgrade() -> None:
    op.execute("DROP INDEX comms.sessions_org_created")
    op.execute("DROP TABLE comms.members")
