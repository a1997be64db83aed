"""crm: numbered tax receipts that lock gifts, pledges with their payments, matching gifts and
tributes.

- crm.receipt_counters: the last receipt number issued per organization and tax year; the row
  is locked (INSERT ... ON CONFLICT DO UPDATE) by the transaction that issues a receipt, so
  numbers are sequential without gaps (a rolled-back transaction gives its number back).
- crm.tax_receipts: one numbered receipt of a gift (its net amount, date, currency and donor
  as issued); at most one is live (issued) per gift; a correction voids it, linking the
  receipt that replaces it.
- crm.pledges: a promise of an amount over a schedule (installments computed from the start
  date, frequency and count); received_amount and payment_count are kept in the same
  transaction as every write of a gift that pays it (crm.donations.pledge_id), and checked by
  `python -m services.crm.check_rollups`.
- crm.matching_gifts: an employer's match of an employee's gift, pledged then received (the
  employer's own gift, soft-crediting the employee).
- crm.donation_tributes: a gift in honour or memory of someone, and whom to notify.

Revision ID: 0026
"""

from alembic import op

from chassis.migrate import script, tenant_table

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

_CURRENCY = "CHECK (currency ~ '^[A-Z]{3}$')"


def upgrade() -> None:
    script(
        op,
        f"""
        CREATE TABLE crm.receipt_counters (
          organization_id uuid NOT NULL,
          year integer NOT NULL CHECK (year BETWEEN 1900 AND 9999),
          last_number integer NOT NULL CHECK (last_number > 0),
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (organization_id, year)
        );

        CREATE TABLE crm.tax_receipts (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          year integer NOT NULL,
          sequence integer NOT NULL CHECK (sequence > 0),
          donation_id uuid NOT NULL,
          donor_id uuid NOT NULL,
          amount numeric(12,2) NOT NULL CHECK (amount > 0),
          currency text NOT NULL {_CURRENCY},
          gift_date date NOT NULL,
          status text NOT NULL DEFAULT 'issued' CHECK (status IN ('issued', 'void')),
          issued_at timestamptz NOT NULL,
          replaces_id uuid,
          replaced_by_id uuid,
          void_reason text,
          voided_at timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, id),
          UNIQUE (organization_id, year, sequence),
          FOREIGN KEY (organization_id, donation_id) REFERENCES crm.donations (organization_id, id),
          CHECK ((status = 'void') = (voided_at IS NOT NULL)),
          CHECK (status = 'void' OR replaced_by_id IS NULL)
        );
        CREATE UNIQUE INDEX tax_receipts_one_live ON crm.tax_receipts (organization_id, donation_id)
          WHERE status = 'issued';
        CREATE INDEX tax_receipts_gift ON crm.tax_receipts (organization_id, donation_id);
        CREATE INDEX tax_receipts_donor ON crm.tax_receipts (organization_id, donor_id, year DESC, sequence DESC);

        CREATE TABLE crm.pledges (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          donor_id uuid NOT NULL,
          project_id uuid,
          amount numeric(12,2) NOT NULL CHECK (amount > 0),
          currency text NOT NULL {_CURRENCY},
          start_date date NOT NULL,
          frequency text NOT NULL CHECK (frequency IN ('once', 'weekly', 'monthly', 'quarterly',
            'semiannually', 'annually')),
          installment_count integer NOT NULL CHECK (installment_count BETWEEN 1 AND 600),
          received_amount numeric(14,2) NOT NULL DEFAULT 0 CHECK (received_amount >= 0),
          payment_count integer NOT NULL DEFAULT 0 CHECK (payment_count >= 0),
          status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'fulfilled', 'written_off')),
          written_off_amount numeric(12,2),
          write_off_reason text,
          written_off_at timestamptz,
          notes text,
          create_request_id text,
          version integer NOT NULL DEFAULT 1,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, id),
          CHECK ((status = 'written_off') = (written_off_at IS NOT NULL))
        );
        CREATE INDEX pledges_donor ON crm.pledges (organization_id, donor_id, created_at DESC, id DESC);
        CREATE INDEX pledges_recent ON crm.pledges (organization_id, created_at DESC, id DESC);
        CREATE UNIQUE INDEX pledges_create_request ON crm.pledges (organization_id, create_request_id)
          WHERE create_request_id IS NOT NULL;

        ALTER TABLE crm.donations ADD COLUMN pledge_id uuid,
          ADD CONSTRAINT donations_pledge FOREIGN KEY (organization_id, pledge_id)
            REFERENCES crm.pledges (organization_id, id);
        CREATE INDEX donations_pledge ON crm.donations (organization_id, pledge_id) WHERE pledge_id IS NOT NULL;
        ALTER TABLE crm.batch_gifts ADD COLUMN pledge_id uuid;

        CREATE TABLE crm.matching_gifts (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          donation_id uuid NOT NULL,
          employer_donor_id uuid NOT NULL,
          amount numeric(12,2) NOT NULL CHECK (amount > 0),
          currency text NOT NULL {_CURRENCY},
          status text NOT NULL DEFAULT 'pledged' CHECK (status IN ('pledged', 'received')),
          expected_date date,
          match_donation_id uuid,
          create_request_id text,
          version integer NOT NULL DEFAULT 1,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, id),
          UNIQUE (organization_id, donation_id, employer_donor_id),
          FOREIGN KEY (organization_id, donation_id) REFERENCES crm.donations (organization_id, id),
          FOREIGN KEY (organization_id, match_donation_id) REFERENCES crm.donations (organization_id, id),
          CHECK ((status = 'received') = (match_donation_id IS NOT NULL))
        );
        CREATE INDEX matching_gifts_recent ON crm.matching_gifts (organization_id, created_at DESC, id DESC);
        CREATE UNIQUE INDEX matching_gifts_create_request ON crm.matching_gifts (organization_id, create_request_id)
          WHERE create_request_id IS NOT NULL;

        CREATE TABLE crm.donation_tributes (
          donation_id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          kind text NOT NULL CHECK (kind IN ('honor', 'memory')),
          honoree_name text NOT NULL CHECK (btrim(honoree_name) <> ''),
          notify_name text,
          notify_email text,
          notify_street text,
          notify_city text,
          notify_state text,
          notify_postal_code text,
          notify_country text,
          message text,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          FOREIGN KEY (organization_id, donation_id) REFERENCES crm.donations (organization_id, id)
        );
        """,
    )
    for table in ("crm.receipt_counters", "crm.tax_receipts", "crm.pledges", "crm.matching_gifts",
                  "crm.donation_tributes"):
        tenant_table(op, table)


def downgrade() -> None:
    script(op, """
        DROP TABLE crm.donation_tributes, crm.matching_gifts, crm.tax_receipts, crm.receipt_counters;
        ALTER TABLE crm.batch_gifts DROP COLUMN pledge_id;
        ALTER TABLE crm.donations DROP COLUMN pledge_id;
        DROP TABLE crm.pledges;
    """)
