"""crm: todos (tasks, some suggested by AI), per seed 000.

- donor_id and project_id point at the organization's own donors and projects (composite
  foreign keys, so a todo never names another tenant's row); assigned_to, created_by and
  completed_by are identity's user ids (another service's schema: no foreign key).
- status moves are the service's rule; the table keeps completion consistent (completed_at
  and completed_by set exactly when completed) and AI fields only on AI-generated todos.
- version (etag), create_request_id (AIP-155), and a keyset index for listing by due date
  (none last) then create time.

Revision ID: 0005
"""

from alembic import op

from chassis.migrate import script, tenant_table

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(
        op,
        """
        CREATE TABLE crm.todos (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          title text NOT NULL CHECK (btrim(title) <> ''),
          description text,
          due_date date,
          priority text NOT NULL DEFAULT 'medium' CHECK (priority IN ('low', 'medium', 'high')),
          status text NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'in_progress', 'completed', 'cancelled')),
          donor_id uuid,
          project_id uuid,
          assigned_to uuid,
          created_by uuid,
          is_ai_generated boolean NOT NULL DEFAULT false,
          ai_reasoning text,
          ai_confidence numeric(3,2) CHECK (ai_confidence BETWEEN 0 AND 1),
          completed_at timestamptz,
          completed_by uuid,
          create_request_id text,
          version integer NOT NULL DEFAULT 1,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, id),
          FOREIGN KEY (organization_id, donor_id) REFERENCES crm.donors (organization_id, id),
          FOREIGN KEY (organization_id, project_id) REFERENCES crm.projects (organization_id, id),
          CONSTRAINT todos_ai_fields CHECK (is_ai_generated OR (ai_reasoning IS NULL AND ai_confidence IS NULL)),
          CONSTRAINT todos_completion CHECK (
            (status = 'completed') = (completed_at IS NOT NULL) AND (completed_by IS NULL OR completed_at IS NOT NULL))
        );
        CREATE UNIQUE INDEX todos_create_request ON crm.todos (organization_id, create_request_id)
          WHERE create_request_id IS NOT NULL;
        CREATE INDEX todos_org_status ON crm.todos (organization_id, status);
        CREATE INDEX todos_donor ON crm.todos (organization_id, donor_id);
        CREATE INDEX todos_project ON crm.todos (organization_id, project_id);
        CREATE INDEX todos_assigned ON crm.todos (organization_id, assigned_to);
        CREATE INDEX todos_due ON crm.todos (organization_id, due_date);
        CREATE INDEX todos_list_order
          ON crm.todos (organization_id, COALESCE(due_date, DATE '9999-12-31'), created_at, id);
        """,
    )
    tenant_table(op, "crm.todos")


def downgrade() -> None:
    script(op, "DROP TABLE crm.todos;")

