"""billing: Razorpay gateway configs; the platform's own collection (its charges through the
platform's Stripe account and the events of that account), metered usage prices per plan version, and how far each
subscription's usage has been invoiced.

Revision ID: 0002
"""

from alembic import op

from chassis.migrate import script, tenant_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(
        op,
        """
        -- Metered usage billed in arrears per calendar month: metric -> {"included": N,
        -- "package": units per package, "price": "the package's price"} (Stripe's package
        -- pricing, Lago's package charge). Nothing before this revision was billed for usage, and
        -- no subscriber was invoiced with these versions yet: the catalog's first versions get them.
        ALTER TABLE billing.plans ADD COLUMN usage_prices jsonb NOT NULL DEFAULT '{}';
        UPDATE billing.plans SET usage_prices =
          '{"emails": {"included": 2000, "package": 1000, "price": "1.00"},
            "ai_tokens": {"included": 100000, "package": 100000, "price": "2.00"}}'
          WHERE id = '00000000-0000-4000-8000-000000000001';
        UPDATE billing.plans SET usage_prices =
          '{"emails": {"included": 20000, "package": 1000, "price": "0.80"},
            "ai_tokens": {"included": 1000000, "package": 100000, "price": "1.50"}}'
          WHERE id = '00000000-0000-4000-8000-000000000002';

        -- Razorpay, a second gateway for an organization's gifts.
        ALTER TABLE billing.gateway_configs DROP CONSTRAINT gateway_configs_gateway_check,
          ADD CONSTRAINT gateway_configs_gateway_check CHECK (gateway IN ('stripe', 'razorpay'));

        -- The first calendar month of usage not invoiced yet (NULL: from the first paid period).
        ALTER TABLE billing.subscriptions ADD COLUMN usage_billed_until date;

        -- Each attempt to collect an invoice through the platform's payment provider, by the
        -- provider's payment id: the charge's answer and the provider's later event about it are
        -- one outcome, applied once.
        CREATE TABLE billing.platform_charges (
          organization_id uuid NOT NULL,
          payment_id text NOT NULL,
          invoice_id uuid NOT NULL,
          attempt integer NOT NULL CHECK (attempt > 0),
          amount numeric(12,2) NOT NULL,
          currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
          status text NOT NULL CHECK (status IN ('processing', 'succeeded', 'failed')),
          failure text NOT NULL DEFAULT '',
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (organization_id, payment_id),
          FOREIGN KEY (organization_id, invoice_id) REFERENCES billing.invoices (organization_id, id)
        );
        CREATE INDEX platform_charges_invoice ON billing.platform_charges (organization_id, invoice_id);

        -- Verified events of the platform's own Stripe account (never a donor's gift), raw, once.
        CREATE TABLE billing.platform_events (
          organization_id uuid NOT NULL,
          event_id text NOT NULL,
          event_type text NOT NULL,
          payment_id text NOT NULL,
          payload jsonb NOT NULL,
          outcome text NOT NULL DEFAULT '',
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (organization_id, event_id)
        );
        """,
    )
    for table in ("billing.platform_charges", "billing.platform_events"):
        tenant_table(op, table)


def downgrade() -> None:
    op.execute("DROP TABLE billing.platform_events, billing.platform_charges")
    op.execute("ALTER TABLE billing.subscriptions DROP COLUMN usage_billed_until")
    op.execute("ALTER TABLE billing.plans DROP COLUMN usage_prices")
