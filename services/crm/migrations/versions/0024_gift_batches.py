"""crm: gift batches (a deposit's gifts, entered and then posted at once).

- crm.gift_batches: the expected count and total (in the batch's currency), open or posted.
  Entered count and total are summed from its gifts when read; balanced is a batch whose
  entered values match the expected ones.
- crm.batch_gifts: the gifts entered, with the donation each became when the batch was posted.

Revision ID: 0024
"""

from alembic import op

from chassis.migrate import script, tenant_table

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(
        op,
        """
        CREATE TABLE crm.gift_batches (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          name text NOT NULL CHECK (btrim(name) <> ''),
          currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
          expected_count integer NOT NULL CHECK (expected_count >= 0),
          expected_total numeric(14,2) NOT NULL CHECK (expected_total >= 0),
          status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'posted')),
          posted_at timestamptz,
          create_request_id text,
          version integer NOT NULL DEFAULT 1,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, id),
          CHECK ((status = 'posted') = (posted_at IS NOT NULL))
        );
        CREATE INDEX gift_batches_recent ON crm.gift_batches (organization_id, created_at DESC, id DESC);
        CREATE UNIQUE INDEX gift_batches_create_request ON crm.gift_batches (organization_id, create_request_id)
          WHERE create_request_id IS NOT NULL;

        CREATE TABLE crm.batch_gifts (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          batch_id uuid NOT NULL,
          donor_id uuid NOT NULL,
          project_id uuid,
          amount numeric(12,2) NOT NULL CHECK (amount > 0),
          currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
          date date NOT NULL,
          payment_method text,
          reference_number text,
          notes text,
          tax_deductible boolean NOT NULL DEFAULT true,
          donation_id uuid,
          created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          FOREIGN KEY (organization_id, batch_id) REFERENCES crm.gift_batches (organization_id, id),
          FOREIGN KEY (organization_id, donation_id) REFERENCES crm.donations (organization_id, id)
        );
        CREATE INDEX batch_gifts_batch ON crm.batch_gifts (organization_id, batch_id, created_at, id);
        """,
    )
    for table in ("crm.gift_batches", "crm.batch_gifts"):
        tenant_table(op, table)


def downgrade() -> None:
    script(op, "DROP TABLE crm.batch_gifts, crm.gift_batches;")
