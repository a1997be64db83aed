"""crm: donor lists (static and dynamic) and their members, per seed 000.

- A dynamic list keeps its filter (jsonb, written by the service); a static list's filter is
  '{}'. The type is fixed at creation.
- donor_list_members: composite foreign keys with organization_id, so a membership never
  names another tenant's list or donor; PK (list_id, donor_id); an index on donor_id for
  merges and for reading a donor's lists.
- donor_count of a list is kept by statement-level triggers on donor_list_members, in the
  inserting or deleting transaction: the service's add and remove, and a donor merge that
  drops a membership the survivor already had, all keep it current.

Revision ID: 0006
"""

from alembic import op

from chassis.migrate import script, tenant_table

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(
        op,
        """
        CREATE TABLE crm.donor_lists (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          name text NOT NULL CHECK (btrim(name) <> ''),
          description text,
          type text NOT NULL CHECK (type IN ('static', 'dynamic')),
          filters jsonb NOT NULL DEFAULT '{}',
          donor_count integer NOT NULL DEFAULT 0 CHECK (donor_count >= 0),
          create_request_id text,
          created_by uuid,
          version integer NOT NULL DEFAULT 1,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          deleted_at timestamptz,
          UNIQUE (organization_id, id),
          CONSTRAINT donor_lists_static_no_filter CHECK (type = 'dynamic' OR filters = '{}'::jsonb)
        );
        CREATE UNIQUE INDEX donor_lists_create_request ON crm.donor_lists (organization_id, create_request_id)
          WHERE create_request_id IS NOT NULL;
        CREATE INDEX donor_lists_recent ON crm.donor_lists (organization_id, created_at DESC, id DESC)
          WHERE deleted_at IS NULL;

        CREATE TABLE crm.donor_list_members (
          organization_id uuid NOT NULL,
          list_id uuid NOT NULL,
          donor_id uuid NOT NULL,
          added_at timestamptz NOT NULL DEFAULT now(),
          added_by uuid,
          PRIMARY KEY (list_id, donor_id),
          FOREIGN KEY (organization_id, list_id) REFERENCES crm.donor_lists (organization_id, id),
          FOREIGN KEY (organization_id, donor_id) REFERENCES crm.donors (organization_id, id)
        );
        CREATE INDEX donor_list_members_donor ON crm.donor_list_members (donor_id);

        CREATE FUNCTION crm.donor_list_members_count() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'INSERT' THEN
            UPDATE crm.donor_lists l SET donor_count = l.donor_count + c.n
              FROM (SELECT list_id, count(*) AS n FROM added GROUP BY list_id) c WHERE l.id = c.list_id;
          ELSE
            UPDATE crm.donor_lists l SET donor_count = l.donor_count - c.n
              FROM (SELECT list_id, count(*) AS n FROM removed GROUP BY list_id) c WHERE l.id = c.list_id;
          END IF;
          RETURN NULL;
        END $$;
        CREATE TRIGGER donor_list_members_added AFTER INSERT ON crm.donor_list_members
          REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION crm.donor_list_members_count();
        CREATE TRIGGER donor_list_members_removed AFTER DELETE ON crm.donor_list_members
          REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION crm.donor_list_members_count();
        """,
    )
    for table in ("crm.donor_lists", "crm.donor_list_members"):
        tenant_table(op, table)


def downgrade() -> None:
    script(op, "DROP TABLE crm.donor_list_members, crm.donor_lists; DROP FUNCTION crm.donor_list_members_count();")
