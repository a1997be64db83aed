"""crm: households and the history of who belonged to them.

- crm.households: a name (NULL: derived from the members when read), the primary member.
- crm.household_members: one row per stay of a donor in a household (joined, left, why); a
  donor is in at most one household at a time (a unique index over the stays not ended).
  Household giving is summed when read from the members' kept totals and soft credits, so it
  cannot drift.

Revision ID: 0023
"""

from alembic import op

from chassis.migrate import script, tenant_table

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(
        op,
        """
        CREATE TABLE crm.households (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          name text CHECK (name IS NULL OR btrim(name) <> ''),
          primary_donor_id uuid,
          create_request_id text,
          version integer NOT NULL DEFAULT 1,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, id),
          FOREIGN KEY (organization_id, primary_donor_id) REFERENCES crm.donors (organization_id, id)
        );
        CREATE INDEX households_recent ON crm.households (organization_id, created_at DESC, id DESC);
        CREATE UNIQUE INDEX households_create_request ON crm.households (organization_id, create_request_id)
          WHERE create_request_id IS NOT NULL;

        CREATE TABLE crm.household_members (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          household_id uuid NOT NULL,
          donor_id uuid NOT NULL,
          joined_at timestamptz NOT NULL DEFAULT clock_timestamp(),
          left_at timestamptz,
          leave_reason text CHECK (leave_reason IN ('moved', 'removed', 'merged', 'deleted')),
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          CHECK ((left_at IS NULL) = (leave_reason IS NULL)),
          FOREIGN KEY (organization_id, household_id) REFERENCES crm.households (organization_id, id),
          FOREIGN KEY (organization_id, donor_id) REFERENCES crm.donors (organization_id, id)
        );
        CREATE UNIQUE INDEX household_members_current ON crm.household_members (donor_id) WHERE left_at IS NULL;
        CREATE INDEX household_members_household ON crm.household_members (organization_id, household_id, joined_at);
        CREATE INDEX household_members_donor ON crm.household_members (organization_id, donor_id, joined_at);
        """,
    )
    for table in ("crm.households", "crm.household_members"):
        tenant_table(op, table)


def downgrade() -> None:
    script(op, "DROP TABLE crm.household_members, crm.households;")
