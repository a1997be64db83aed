"""identity: the replica of the organization's seat limit (billing.entitlements.changed),
enforced on CreateInvitation.

Revision ID: 0013
"""

from alembic import op

from chassis.migrate import script, tenant_table

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(
        op,
        """
        CREATE TABLE identity.entitlements (
          organization_id uuid PRIMARY KEY REFERENCES identity.organizations(id) ON DELETE CASCADE,
          plan_code text NOT NULL,
          seats bigint NOT NULL,
          decided_at timestamptz NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );
        """,
    )
    tenant_table(op, "identity.entitlements")


def downgrade() -> None:
    op.execute("DROP TABLE identity.entitlements")
