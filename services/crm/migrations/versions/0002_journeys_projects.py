"""crm: journey versions, donor stage history, project versions and idempotent creates.

- crm.journeys.version: the journey's etag (an organization without a row has the default
  journey at version 1, the version its seeded row starts at).
- crm.donor_stage_history: every MoveDonorStage, newest first per donor; changed_at is the
  clock time after the donor's row was locked, so a donor's changes are strictly ordered.
- crm.projects: version (etag), create_request_id (AIP-155), end_date >= start_date, and a
  keyset index for listing newest first (by status too).

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
        ALTER TABLE crm.journeys ADD COLUMN version integer NOT NULL DEFAULT 1;

        CREATE TABLE crm.donor_stage_history (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          donor_id uuid NOT NULL,
          from_stage text,
          to_stage text NOT NULL,
          reason text NOT NULL,
          changed_by text NOT NULL DEFAULT '',
          changed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          FOREIGN KEY (organization_id, donor_id) REFERENCES crm.donors (organization_id, id)
        );
        CREATE INDEX donor_stage_history_donor
          ON crm.donor_stage_history (organization_id, donor_id, changed_at DESC, id DESC);

        ALTER TABLE crm.projects
          ADD COLUMN version integer NOT NULL DEFAULT 1,
          ADD COLUMN create_request_id text,
          ADD CONSTRAINT projects_dates CHECK (start_date IS NULL OR end_date IS NULL OR end_date >= start_date);
        CREATE UNIQUE INDEX projects_create_request ON crm.projects (organization_id, create_request_id)
          WHERE create_request_id IS NOT NULL;
        CREATE INDEX projects_recent ON crm.projects (organization_id, created_at DESC, id DESC)
          WHERE deleted_at IS NULL;
        CREATE INDEX projects_status_recent ON crm.projects (organization_id, status, created_at DESC, id DESC)
          WHERE deleted_at IS NULL;
        """,
    )
    tenant_table(op, "crm.donor_stage_history")


def downgrade() -> None:
    script(
        op,
        """
        DROP INDEX crm.projects_status_recent;
        DROP INDEX crm.projects_recent;
        DROP INDEX crm.projects_create_request;
        ALTER TABLE crm.projects DROP CONSTRAINT projects_dates, DROP COLUMN create_request_id,
          DROP COLUMN version;
        DROP TABLE crm.donor_stage_history;
        ALTER TABLE crm.journeys DROP COLUMN version;
        """,
    )
