"""crm: a replica of who is an active member of each organization (todos are assigned to them).

Written only by the crm.members consumer from identity's events (identity.member.joined,
identity.organization.created, identity.membership.changed); crm never asks identity.
last_event_time is the occur time of the event that set the row: an older event arriving
later (another queue, a retry) never overwrites a newer state.

Revision ID: 0012
"""

from alembic import op

from chassis.migrate import script, tenant_table

revision = "0012"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(
        op,
        """
        CREATE TABLE crm.members (
          organization_id uuid NOT NULL,
          user_id uuid NOT NULL,
          active boolean NOT NULL,
          last_event_time timestamptz NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (organization_id, user_id)
        );
        """,
    )
    tenant_table(op, "crm.members")


def downgrade() -> None:
    op.execute("DROP TABLE crm.members")
