"""crm: gift history (refunds and corrections), recurring schedule, etag.

- crm.donations gains refunded_amount (the sum of its refunds, kept by the service in the
  refunding transaction; never more than the amount), next_expected_date (a recurring gift's
  date plus one period, written by the service, backfilled here with PostgreSQL's month
  arithmetic, which clamps to the month's end as the service does) and version (etag).
  A gift is fully refunded when refunded_amount = amount; totals count amount - refunded_amount.
- crm.donation_refunds: one row per refund (history), in the gift's currency;
  request_id (AIP-155) unique per tenant.
- crm.donation_revisions: one row per correction, numbered per gift, with the changed field
  paths and their values before and after (jsonb), the reason and the actor.
- Both point at the organization's own gift (composite foreign key) and are tenant tables.

Revision ID: 0009
"""

from alembic import op

from chassis.migrate import script, tenant_table

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(
        op,
        """
        ALTER TABLE crm.donations
          ADD COLUMN refunded_amount numeric(12,2) NOT NULL DEFAULT 0,
          ADD COLUMN next_expected_date date,
          ADD COLUMN version integer NOT NULL DEFAULT 1,
          ADD CONSTRAINT donations_refunded_within CHECK (refunded_amount >= 0 AND refunded_amount <= amount),
          ADD CONSTRAINT donations_org_id UNIQUE (organization_id, id);
        UPDATE crm.donations SET next_expected_date = CAST(date + CASE recurring_frequency
            WHEN 'weekly' THEN interval '7 days' WHEN 'monthly' THEN interval '1 month'
            WHEN 'quarterly' THEN interval '3 months' WHEN 'semiannually' THEN interval '6 months'
            WHEN 'annually' THEN interval '1 year' END AS date)
          WHERE is_recurring AND recurring_frequency IS NOT NULL;
        CREATE INDEX donations_recurring ON crm.donations (organization_id, date DESC, id DESC) WHERE is_recurring;
        CREATE INDEX donations_receipts ON crm.donations (organization_id, donor_id, date)
          WHERE tax_deductible AND refunded_amount < amount;

        CREATE TABLE crm.donation_refunds (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          donation_id uuid NOT NULL,
          amount numeric(12,2) NOT NULL CHECK (amount > 0),
          currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
          reason text NOT NULL CHECK (btrim(reason) <> ''),
          refund_date date NOT NULL,
          request_id text,
          created_by text,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          FOREIGN KEY (organization_id, donation_id) REFERENCES crm.donations (organization_id, id)
        );
        CREATE INDEX donation_refunds_donation ON crm.donation_refunds (donation_id, created_at, id);
        CREATE UNIQUE INDEX donation_refunds_request ON crm.donation_refunds (organization_id, request_id)
          WHERE request_id IS NOT NULL;

        CREATE TABLE crm.donation_revisions (
          organization_id uuid NOT NULL,
          donation_id uuid NOT NULL,
          revision integer NOT NULL CHECK (revision > 0),
          changed_fields text[] NOT NULL,
          before jsonb NOT NULL,
          after jsonb NOT NULL,
          reason text NOT NULL CHECK (btrim(reason) <> ''),
          actor_id text,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (donation_id, revision),
          FOREIGN KEY (organization_id, donation_id) REFERENCES crm.donations (organization_id, id)
        );
        """,
    )
    for table in ("crm.donation_refunds", "crm.donation_revisions"):
        tenant_table(op, table)


def downgrade() -> None:
    script(
        op,
        """
        DROP TABLE crm.donation_revisions, crm.donation_refunds;
        DROP INDEX crm.donations_receipts, crm.donations_recurring;
        ALTER TABLE crm.donations DROP CONSTRAINT donations_org_id, DROP CONSTRAINT donations_refunded_within,
          DROP COLUMN version, DROP COLUMN next_expected_date, DROP COLUMN refunded_amount;
        """,
    )
