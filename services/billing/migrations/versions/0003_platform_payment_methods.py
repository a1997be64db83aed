"""billing: the organization as a customer of the platform's Stripe account, and the card saved
for its subscription (masked: the provider's ids, brand, last four digits, expiry).

Revision ID: 0003
"""

from alembic import op

from chassis.migrate import script, tenant_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(
        op,
        """
        -- One row per organization once it asked to save a card: its customer at the platform's
        -- payment provider, and its default payment method when a SetupIntent succeeded (the
        -- newest one wins: setup_time orders them). Never a card number.
        CREATE TABLE billing.platform_customers (
          organization_id uuid PRIMARY KEY,
          provider text NOT NULL DEFAULT 'stripe' CHECK (provider IN ('stripe')),
          customer_id text NOT NULL CHECK (length(customer_id) BETWEEN 1 AND 255),
          payment_method_id text CHECK (length(payment_method_id) BETWEEN 1 AND 255),
          brand text NOT NULL DEFAULT '' CHECK (length(brand) <= 32),
          last4 text NOT NULL DEFAULT '' CHECK (last4 ~ '^([0-9]{4})?$'),
          exp_month integer NOT NULL DEFAULT 0 CHECK (exp_month BETWEEN 0 AND 12),
          exp_year integer NOT NULL DEFAULT 0 CHECK (exp_year BETWEEN 0 AND 9999),
          setup_intent_id text,
          setup_time timestamptz,
          version integer NOT NULL DEFAULT 1,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );
        """,
    )
    tenant_table(op, "billing.platform_customers")


def downgrade() -> None:
    op.execute("DROP TABLE billing.platform_customers")
