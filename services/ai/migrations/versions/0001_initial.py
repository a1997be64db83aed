"""ai: the organization's AI settings and profile, personal memory, token usage, donor research.

- settings: one row per organization: the model provider (API key sealed with chassis.crypto,
  never stored in clear), the monthly token budget, the AI profile of seed 000's organizations
  (ai_instructions, website_url, website_data as website_summary, website_last_crawled).
- personal_memory: seed 000's users.personal_memory, per organization and user.
- token_usage: tokens per organization and month (the budget's counter).
- person_research: seed 000's person_research, versioned per donor (one row per version),
  with the claims and the sources each claim rests on.

Revision ID: 0001
"""

from alembic import op

from chassis.migrate import outbox_tables, script, tenant_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TENANT_TABLES = ["ai.settings", "ai.personal_memory", "ai.token_usage", "ai.person_research"]


def upgrade() -> None:
    outbox_tables(op, "ai")
    script(
        op,
        """
        CREATE TABLE ai.settings (
          organization_id uuid PRIMARY KEY,
          provider text NOT NULL DEFAULT 'builtin' CHECK (provider IN ('builtin', 'openai', 'anthropic')),
          base_url text NOT NULL DEFAULT '' CHECK (length(base_url) <= 500),
          model text NOT NULL DEFAULT '' CHECK (length(model) <= 200),
          api_key_sealed text,
          monthly_token_budget bigint NOT NULL DEFAULT 0 CHECK (monthly_token_budget >= 0),
          ai_instructions text NOT NULL DEFAULT '',
          website_url text NOT NULL DEFAULT '',
          website_summary text NOT NULL DEFAULT '',
          website_last_crawled timestamptz,
          version integer NOT NULL DEFAULT 1,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE ai.personal_memory (
          organization_id uuid NOT NULL,
          user_id uuid NOT NULL,
          memory text NOT NULL DEFAULT '',
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (organization_id, user_id)
        );

        CREATE TABLE ai.token_usage (
          organization_id uuid NOT NULL,
          month date NOT NULL,
          prompt_tokens bigint NOT NULL DEFAULT 0,
          completion_tokens bigint NOT NULL DEFAULT 0,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (organization_id, month)
        );

        CREATE TABLE ai.person_research (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          donor_id uuid NOT NULL,
          version integer NOT NULL CHECK (version > 0),
          status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'completed', 'failed')),
          basis text CHECK (basis IN ('web', 'organization_data')),
          donor_facts jsonb NOT NULL DEFAULT '{}',
          summary text NOT NULL DEFAULT '',
          claims jsonb NOT NULL DEFAULT '[]',
          sources jsonb NOT NULL DEFAULT '[]',
          model text NOT NULL DEFAULT '',
          error text NOT NULL DEFAULT '',
          requested_by uuid,
          create_request_id text,
          completed_at timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, donor_id, version)
        );
        CREATE UNIQUE INDEX person_research_request ON ai.person_research (organization_id, create_request_id)
          WHERE create_request_id IS NOT NULL;
        """,
    )
    for table in TENANT_TABLES:
        tenant_table(op, table)


def downgrade() -> None:
    script(op, "DROP TABLE ai.person_research; DROP TABLE ai.token_usage; DROP TABLE ai.personal_memory; "
               "DROP TABLE ai.settings; DROP TABLE ai.outbox; DROP TABLE ai.inbox;")
