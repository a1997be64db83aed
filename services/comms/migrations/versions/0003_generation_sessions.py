"""comms: AI email generation sessions (seed 000's email_generation_sessions and
generated_emails), and one job per donor of a session (generation_jobs).

The jobs themselves travel on the work queue (comms.generation_job.requested through the outbox,
taken by ai's generation worker); generation_jobs keeps each donor's state, so a cancelled
session's pending jobs are skipped, a repeated job is recognised, and progress is counted. The
seed has no status for a reviewer's refusal: 'rejected' is added to generated_emails.status.

Revision ID: 0003
"""

from alembic import op

from chassis.migrate import script, tenant_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TENANT_TABLES = ["comms.email_generation_sessions", "comms.generation_jobs", "comms.generated_emails"]


def upgrade() -> None:
    script(
        op,
        """
        CREATE TABLE comms.email_generation_sessions (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          name text NOT NULL,
          description text NOT NULL DEFAULT '',
          status text NOT NULL CHECK (status IN ('configuring', 'generating', 'completed', 'cancelled')),
          instructions text NOT NULL DEFAULT '',
          -- how the donors were chosen: {"donor_ids": n} or {"donor_list_id": "..."}
          donor_selection jsonb NOT NULL DEFAULT '{}',
          selected_donor_ids uuid[] NOT NULL DEFAULT '{}',
          template text NOT NULL DEFAULT '',
          signer_user_id uuid,
          signer_name text NOT NULL DEFAULT '',
          chat_history jsonb NOT NULL DEFAULT '[]',
          total_emails integer NOT NULL DEFAULT 0,
          generated_count integer NOT NULL DEFAULT 0,
          failed_count integer NOT NULL DEFAULT 0,
          job_started_at timestamptz,
          job_completed_at timestamptz,
          create_request_id text,
          created_by uuid,
          version integer NOT NULL DEFAULT 1,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, id)
        );
        CREATE INDEX sessions_org_status ON comms.email_generation_sessions (organization_id, status);
        CREATE UNIQUE INDEX sessions_create_request ON comms.email_generation_sessions
          (organization_id, create_request_id) WHERE create_request_id IS NOT NULL;

        CREATE TABLE comms.generation_jobs (
          organization_id uuid NOT NULL,
          session_id uuid NOT NULL,
          donor_id uuid NOT NULL,
          status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed', 'cancelled')),
          error text NOT NULL DEFAULT '',
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (organization_id, session_id, donor_id),
          FOREIGN KEY (organization_id, session_id) REFERENCES comms.email_generation_sessions (organization_id, id)
        );
        CREATE INDEX generation_jobs_pending ON comms.generation_jobs (organization_id, session_id)
          WHERE status = 'pending';

        CREATE TABLE comms.generated_emails (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          session_id uuid NOT NULL,
          donor_id uuid NOT NULL,
          subject text NOT NULL,
          body_plain text NOT NULL,
          body_html text NOT NULL,
          structured_content jsonb NOT NULL DEFAULT '{}',
          status text NOT NULL DEFAULT 'draft'
            CHECK (status IN ('draft', 'approved', 'scheduled', 'sent', 'failed', 'rejected')),
          status_reason text NOT NULL DEFAULT '',
          approved_by uuid,
          approved_at timestamptz,
          sent_at timestamptz,
          scheduled_for timestamptz,
          sent_by_staff_id uuid,
          provider text,
          provider_message_id text,
          -- the comms message that carries it, once handed to the send queue
          message_id uuid,
          ai_model text NOT NULL DEFAULT '',
          token_usage integer NOT NULL DEFAULT 0,
          generation_time_ms integer NOT NULL DEFAULT 0,
          donor_context_used jsonb NOT NULL DEFAULT '{}',
          version integer NOT NULL DEFAULT 1,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, session_id, donor_id),
          FOREIGN KEY (organization_id, session_id) REFERENCES comms.email_generation_sessions (organization_id, id)
        );
        CREATE INDEX generated_emails_session ON comms.generated_emails (organization_id, session_id, created_at, id);
        CREATE INDEX generated_emails_donor ON comms.generated_emails (organization_id, donor_id);
        CREATE UNIQUE INDEX generated_emails_message ON comms.generated_emails (organization_id, message_id)
          WHERE message_id IS NOT NULL;
        """,
    )
    for table in TENANT_TABLES:
        tenant_table(op, table)


def downgrade() -> None:
    script(op, "DROP TABLE comms.generated_emails; DROP TABLE comms.generation_jobs; "
               "DROP TABLE comms.email_generation_sessions;")
