"""crm: funds (NPSP's general accounting units) and gifts split across them.

- crm.funds: the organization's funds, restricted or unrestricted, active or closed; the name
  unique per organization (case-insensitive).
- crm.gift_allocations: a gift's part in one fund, and that part's share of the gift's refunds
  (in the order the split named them: position).
- A gift with allocations is split exactly: the allocations add up to the gift's amount, and
  their refunded shares to its refunded amount. Deferred constraint triggers on both tables
  check the gifts a transaction touched at its commit, so a split is replaced (delete, insert)
  and a refund shared out in several statements, and a transaction that leaves a split that does
  not add up fails whole (check_violation, constraint gift_allocations_exact).

Revision ID: 0022
"""

from alembic import op

from chassis.migrate import script, tenant_table

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(
        op,
        """
        CREATE TABLE crm.funds (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          name text NOT NULL CHECK (btrim(name) <> ''),
          code text,
          description text,
          restriction text NOT NULL DEFAULT 'unrestricted' CHECK (restriction IN ('unrestricted', 'restricted')),
          status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed')),
          create_request_id text,
          version integer NOT NULL DEFAULT 1,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, id)
        );
        CREATE UNIQUE INDEX funds_name ON crm.funds (organization_id, lower(name));
        CREATE UNIQUE INDEX funds_create_request ON crm.funds (organization_id, create_request_id)
          WHERE create_request_id IS NOT NULL;

        CREATE TABLE crm.gift_allocations (
          organization_id uuid NOT NULL,
          donation_id uuid NOT NULL,
          fund_id uuid NOT NULL,
          amount numeric(12,2) NOT NULL CHECK (amount > 0),
          refunded_amount numeric(12,2) NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0 AND refunded_amount <= amount),
          position integer NOT NULL DEFAULT 0,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (donation_id, fund_id),
          FOREIGN KEY (organization_id, donation_id) REFERENCES crm.donations (organization_id, id),
          FOREIGN KEY (organization_id, fund_id) REFERENCES crm.funds (organization_id, id)
        );
        CREATE INDEX gift_allocations_fund ON crm.gift_allocations (organization_id, fund_id);

        CREATE FUNCTION crm.check_gift_split() RETURNS trigger LANGUAGE plpgsql
          SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
          gift uuid;
          bad record;
        BEGIN
          IF TG_TABLE_NAME = 'donations' THEN gift := NEW.id;
          ELSIF TG_OP = 'DELETE' THEN gift := OLD.donation_id;
          ELSE gift := NEW.donation_id;
          END IF;
          SELECT d.amount, d.refunded_amount, sum(a.amount) AS allocated, sum(a.refunded_amount) AS refunded
            INTO bad
            FROM crm.donations d JOIN crm.gift_allocations a ON a.donation_id = d.id
            WHERE d.id = gift GROUP BY d.amount, d.refunded_amount
            HAVING sum(a.amount) <> d.amount OR sum(a.refunded_amount) <> d.refunded_amount;
          IF FOUND THEN
            RAISE EXCEPTION 'the allocations of donation % add up to % (refunded %), not its % (refunded %)',
              gift, bad.allocated, bad.refunded, bad.amount, bad.refunded_amount
              USING ERRCODE = 'check_violation', CONSTRAINT = 'gift_allocations_exact';
          END IF;
          RETURN NULL;
        END $$;
        CREATE CONSTRAINT TRIGGER gift_allocations_exact AFTER INSERT OR UPDATE OR DELETE ON crm.gift_allocations
          DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION crm.check_gift_split();
        CREATE CONSTRAINT TRIGGER gift_allocations_exact AFTER UPDATE OF amount, refunded_amount ON crm.donations
          DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
          WHEN (OLD.amount IS DISTINCT FROM NEW.amount OR OLD.refunded_amount IS DISTINCT FROM NEW.refunded_amount)
          EXECUTE FUNCTION crm.check_gift_split();
        """,
    )
    for table in ("crm.funds", "crm.gift_allocations"):
        tenant_table(op, table)


def downgrade() -> None:
    script(op, """
        DROP TRIGGER gift_allocations_exact ON crm.donations;
        DROP TABLE crm.gift_allocations;
        DROP FUNCTION crm.check_gift_split();
        DROP TABLE crm.funds;
    """)
