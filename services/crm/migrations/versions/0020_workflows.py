"""crm: workflows, their versions and executions (seed 002), and the due-actions table that
runs them.

- crm.workflows: the definition (JSONB, validated by the service), variables, status, the
  definition's version, the event types its triggers name (text[], GIN: the trigger consumer
  looks workflows up by event type), the webhook signing secret sealed (chassis.crypto).
  `version` is the row's etag counter; `definition_version` the definition's.
- crm.workflow_versions: every version of a definition; an execution runs the version it
  started with, whatever edits follow.
- crm.workflow_executions: trigger, context, status, progress, current step, log, error, and the
  wait an execution is in (event type and match) so an arriving event can resume it. A trigger
  starts a workflow once per trigger key (the event id, or donor and period for a schedule).
- crm.workflow_due: what is due when: the next step of an execution (at most one), or a
  workflow's next scheduled run (at most one). Infrastructure like the outbox: the worker claims
  every tenant's due rows (FOR UPDATE SKIP LOCKED, with a lease), so it keys the tenant as
  tenant_id and carries no RLS policy; it holds ids and times only, and each claimed row is
  then run in its tenant's unit of work, under row-level security.

Revision ID: 0020
"""

from alembic import op

from chassis.migrate import script, tenant_table

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(
        op,
        """
        CREATE TABLE crm.workflows (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          name text NOT NULL CHECK (btrim(name) <> ''),
          description text,
          category text,
          definition jsonb NOT NULL,
          variables jsonb NOT NULL DEFAULT '{}',
          trigger_events text[] NOT NULL DEFAULT '{}',
          is_template boolean NOT NULL DEFAULT false,
          template_id text,
          status text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'paused', 'archived')),
          definition_version integer NOT NULL DEFAULT 1,
          webhook_secret_sealed text NOT NULL,
          created_by uuid,
          create_request_id text,
          version integer NOT NULL DEFAULT 1,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          deleted_at timestamptz,
          UNIQUE (organization_id, id),
          CONSTRAINT workflows_template_inactive CHECK (NOT is_template OR status <> 'active')
        );
        CREATE UNIQUE INDEX workflows_create_request ON crm.workflows (organization_id, create_request_id)
          WHERE create_request_id IS NOT NULL;
        CREATE INDEX workflows_list ON crm.workflows (organization_id, created_at DESC, id DESC)
          WHERE deleted_at IS NULL;
        CREATE INDEX workflows_trigger_events ON crm.workflows USING gin (trigger_events)
          WHERE deleted_at IS NULL AND status = 'active';

        CREATE TABLE crm.workflow_versions (
          organization_id uuid NOT NULL,
          workflow_id uuid NOT NULL,
          definition_version integer NOT NULL,
          definition jsonb NOT NULL,
          variables jsonb NOT NULL DEFAULT '{}',
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (workflow_id, definition_version),
          FOREIGN KEY (organization_id, workflow_id) REFERENCES crm.workflows (organization_id, id)
        );

        CREATE TABLE crm.workflow_executions (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          workflow_id uuid NOT NULL,
          workflow_version integer NOT NULL,
          trigger_event text NOT NULL,
          trigger_key text NOT NULL,
          trigger_data jsonb NOT NULL DEFAULT '{}',
          context jsonb NOT NULL DEFAULT '{}',
          status text NOT NULL DEFAULT 'running'
            CHECK (status IN ('running', 'waiting', 'completed', 'failed', 'cancelled')),
          progress integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
          step_index integer,
          current_step text,
          donor_id uuid,
          log jsonb NOT NULL DEFAULT '[]',
          error text,
          attempts integer NOT NULL DEFAULT 0,
          wait_event text,
          wait_match jsonb,
          next_run_at timestamptz,
          started_at timestamptz NOT NULL,
          ended_at timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, id),
          UNIQUE (workflow_id, trigger_key),
          FOREIGN KEY (organization_id, workflow_id) REFERENCES crm.workflows (organization_id, id),
          FOREIGN KEY (workflow_id, workflow_version) REFERENCES crm.workflow_versions (workflow_id, definition_version)
        );
        CREATE INDEX workflow_executions_list ON crm.workflow_executions (organization_id, created_at DESC, id DESC);
        CREATE INDEX workflow_executions_workflow ON crm.workflow_executions (organization_id, workflow_id);
        CREATE INDEX workflow_executions_donor ON crm.workflow_executions (organization_id, donor_id);
        CREATE INDEX workflow_executions_waiting ON crm.workflow_executions (organization_id, wait_event)
          WHERE status = 'waiting' AND wait_event IS NOT NULL;

        CREATE TABLE crm.workflow_due (
          id bigserial PRIMARY KEY,
          tenant_id uuid NOT NULL,
          kind text NOT NULL CHECK (kind IN ('step', 'schedule')),
          execution_id uuid REFERENCES crm.workflow_executions (id) ON DELETE CASCADE,
          workflow_id uuid NOT NULL REFERENCES crm.workflows (id) ON DELETE CASCADE,
          due_at timestamptz NOT NULL,
          lease_until timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          CHECK ((kind = 'step') = (execution_id IS NOT NULL))
        );
        CREATE UNIQUE INDEX workflow_due_step ON crm.workflow_due (execution_id) WHERE kind = 'step';
        CREATE UNIQUE INDEX workflow_due_schedule ON crm.workflow_due (workflow_id) WHERE kind = 'schedule';
        CREATE INDEX workflow_due_at ON crm.workflow_due (due_at);
        """,
    )
    for table in ("crm.workflows", "crm.workflow_versions", "crm.workflow_executions"):
        tenant_table(op, table)


def downgrade() -> None:
    script(op, """
        DROP TABLE crm.workflow_due;
        DROP TABLE crm.workflow_executions;
        DROP TABLE crm.workflow_versions;
        DROP TABLE crm.workflows;
    """)
