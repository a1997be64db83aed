"""ai: the WhatsApp assistant: the staff numbers it answers (per organization, each mapped to a
staff user) and seed 000's whatsapp_queries (every exchange, refusals included, one per
inbound message); and classification_runs, the unattended classification of many donors
(its progress: the cursor of the next batch, and the counts); and ai.members, a replica of who
is an active member (chassis.members), against which the allowlist's staff users are checked.

Revision ID: 0004
"""

from alembic import op

from chassis import members
from chassis.migrate import script, tenant_table

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TENANT_TABLES = ["ai.whatsapp_allowlist", "ai.whatsapp_queries", "ai.classification_runs"]


def upgrade() -> None:
    script(
        op,
        """
        CREATE TABLE ai.whatsapp_allowlist (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          phone text NOT NULL CHECK (phone ~ '^\\+[1-9][0-9]{6,14}$'),
          user_id uuid NOT NULL,
          created_by uuid,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, phone)
        );

        CREATE TABLE ai.whatsapp_queries (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          message_id text NOT NULL CHECK (length(message_id) <= 200),
          from_phone text NOT NULL CHECK (length(from_phone) <= 20),
          staff_id uuid,
          user_id uuid,
          status text NOT NULL CHECK (status IN ('answered', 'refused')),
          query_text text NOT NULL CHECK (length(query_text) <= 4096),
          query_type text NOT NULL DEFAULT '',
          response_text text NOT NULL DEFAULT '',
          tools text[] NOT NULL DEFAULT '{}',
          model text NOT NULL DEFAULT '',
          execution_time_ms integer NOT NULL DEFAULT 0,
          token_usage integer NOT NULL DEFAULT 0,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, message_id)
        );
        CREATE INDEX whatsapp_queries_date ON ai.whatsapp_queries (organization_id, created_at DESC, id DESC);

        CREATE TABLE ai.classification_runs (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          donor_ids uuid[] NOT NULL DEFAULT '{}',
          all_donors boolean NOT NULL DEFAULT false,
          suggest_todos boolean NOT NULL DEFAULT false,
          status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed')),
          cursor text NOT NULL DEFAULT '' CHECK (length(cursor) <= 2000),
          classified_count integer NOT NULL DEFAULT 0,
          failed_count integer NOT NULL DEFAULT 0,
          todos_created integer NOT NULL DEFAULT 0,
          requested_by uuid,
          create_request_id text,
          completed_at timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          CHECK (all_donors OR cardinality(donor_ids) > 0)
        );
        CREATE UNIQUE INDEX classification_runs_request ON ai.classification_runs (organization_id, create_request_id)
          WHERE create_request_id IS NOT NULL;
        """,
    )
    for table in TENANT_TABLES:
        tenant_table(op, table)
    members.create_table(op, "ai")


def downgrade() -> None:
    script(op, "DROP TABLE ai.members; DROP TABLE ai.classification_runs; DROP TABLE ai.whatsapp_queries; "
               "DROP TABLE ai.whatsapp_allowlist;")
