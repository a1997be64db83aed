"""crm: what billing tells crm. The replica of the organization's entitlements
(billing.entitlements.changed), enforced where donors are created, and refunds of online gifts
that arrived before their gift (applied when the gift is recorded).

Revision ID: 0017
"""

from alembic import op

from chassis.migrate import script, tenant_table

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(
        op,
        """
        CREATE TABLE crm.entitlements (
          organization_id uuid PRIMARY KEY,
          plan_code text NOT NULL,
          donors bigint NOT NULL,
          seats bigint NOT NULL,
          decided_at timestamptz NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE crm.pending_gateway_refunds (
          organization_id uuid NOT NULL,
          refund_key text NOT NULL,
          payment_key text NOT NULL,
          amount numeric(12,2) NOT NULL CHECK (amount > 0),
          currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
          refund_date date NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (organization_id, refund_key)
        );
        CREATE INDEX pending_gateway_refunds_payment ON crm.pending_gateway_refunds (organization_id, payment_key);
        """,
    )
    tenant_table(op, "crm.entitlements")
    tenant_table(op, "crm.pending_gateway_refunds")


def downgrade() -> None:
    op.execute("DROP TABLE crm.pending_gateway_refunds")
    op.execute("DROP TABLE crm.entitlements")
