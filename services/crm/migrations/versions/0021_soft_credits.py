"""crm: soft credits and the donors' soft giving totals.

- crm.soft_credits: a donor credited with (part of) a gift someone else gave, with a role and
  an amount in the gift's currency (at most the gift's amount); one per donor per gift, never
  the gift's own donor (the service keeps that rule through corrections and merges).
- crm.donor_soft_giving: per donor and currency, the sum over the donor's soft credits of
  least(credit, what remains of its gift), the count and the first and last gift dates, for
  gifts not fully refunded; kept by the service in the same transaction as every write that
  changes it (record, correct, refund, set soft credits, merge). crm.donor_giving stays the
  hard credit; combined giving is the two added per currency.
  `python -m services.crm.check_rollups` recomputes both from the gifts and reports any
  difference.

Revision ID: 0021
"""

from alembic import op

from chassis.migrate import script, tenant_table

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(
        op,
        """
        CREATE TABLE crm.soft_credits (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          donation_id uuid NOT NULL,
          donor_id uuid NOT NULL,
          role text NOT NULL CHECK (role IN ('spouse', 'household_member', 'solicitor',
            'donor_advised_fund_advisor', 'matched_employee', 'influencer', 'other')),
          amount numeric(12,2) NOT NULL CHECK (amount > 0),
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (donation_id, donor_id),
          FOREIGN KEY (organization_id, donation_id) REFERENCES crm.donations (organization_id, id),
          FOREIGN KEY (organization_id, donor_id) REFERENCES crm.donors (organization_id, id)
        );
        CREATE INDEX soft_credits_donor ON crm.soft_credits (organization_id, donor_id);

        CREATE TABLE crm.donor_soft_giving (
          organization_id uuid NOT NULL,
          donor_id uuid NOT NULL,
          currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
          soft_amount numeric(14,2) NOT NULL DEFAULT 0,
          soft_count bigint NOT NULL DEFAULT 0,
          first_gift_date date,
          last_gift_date date,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (donor_id, currency),
          FOREIGN KEY (organization_id, donor_id) REFERENCES crm.donors (organization_id, id)
        );
        """,
    )
    for table in ("crm.soft_credits", "crm.donor_soft_giving"):
        tenant_table(op, table)


def downgrade() -> None:
    script(op, "DROP TABLE crm.donor_soft_giving, crm.soft_credits;")
