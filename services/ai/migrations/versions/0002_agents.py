"""ai: agents (seed 002): the platform's catalog, installation per organization, access per
user, conversations and their messages (tool calls and pending actions included).

ai_agents is the platform's catalog, the same for every organization: no organization_id and
no row-level security; only platform operators write it (the platform.ai_agents.write
permission on CreateAgent). Every other table is tenant-owned under RLS; composite foreign keys
keep each row within its organization. One agent is seeded: donor-assistant.

Revision ID: 0002
"""

from alembic import op

from chassis.migrate import script, tenant_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TENANT_TABLES = ["ai.organization_agents", "ai.user_agent_access", "ai.agent_sessions", "ai.agent_messages"]


def upgrade() -> None:
    script(
        op,
        """
        CREATE TABLE ai.ai_agents (
          id uuid PRIMARY KEY,
          slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
          name text NOT NULL CHECK (btrim(name) <> ''),
          description text NOT NULL DEFAULT '',
          version text NOT NULL DEFAULT '1',
          tools text[] NOT NULL DEFAULT '{}',
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );
        INSERT INTO ai.ai_agents (id, slug, name, description, version, tools) VALUES
          ('6f0c1a8e-2b1d-4c55-9a7e-0d1f2a3b4c5d', 'donor-assistant', 'Donor assistant',
           'Finds donors, tells you about their giving, and proposes todos for you to confirm.', '1',
           '{search_donors,get_donor,create_todo}');

        CREATE TABLE ai.organization_agents (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          agent_id uuid NOT NULL REFERENCES ai.ai_agents (id),
          config jsonb NOT NULL DEFAULT '{}',
          installed_by uuid,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, agent_id),
          UNIQUE (organization_id, id)
        );

        CREATE TABLE ai.user_agent_access (
          organization_id uuid NOT NULL,
          organization_agent_id uuid NOT NULL,
          user_id uuid NOT NULL,
          granted_by uuid,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (organization_id, organization_agent_id, user_id),
          FOREIGN KEY (organization_id, organization_agent_id) REFERENCES ai.organization_agents (organization_id, id)
        );

        CREATE TABLE ai.agent_sessions (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          organization_agent_id uuid NOT NULL,
          user_id uuid NOT NULL,
          title text NOT NULL DEFAULT '',
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, id),
          FOREIGN KEY (organization_id, organization_agent_id) REFERENCES ai.organization_agents (organization_id, id)
        );
        CREATE INDEX agent_sessions_user ON ai.agent_sessions (organization_id, user_id, created_at DESC);

        CREATE TABLE ai.agent_messages (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          session_id uuid NOT NULL,
          seq integer NOT NULL CHECK (seq > 0),
          role text NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
          content text NOT NULL DEFAULT '',
          tool_name text,
          tool_arguments jsonb,
          action_status text CHECK (action_status IN ('pending', 'confirmed', 'rejected')),
          model text NOT NULL DEFAULT '',
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (session_id, seq),
          FOREIGN KEY (organization_id, session_id) REFERENCES ai.agent_sessions (organization_id, id),
          CONSTRAINT agent_messages_tool CHECK ((role = 'tool') = (tool_name IS NOT NULL))
        );
        """,
    )
    for table in TENANT_TABLES:
        tenant_table(op, table)


def downgrade() -> None:
    script(op, "DROP TABLE ai.agent_messages; DROP TABLE ai.agent_sessions; DROP TABLE ai.user_agent_access; "
               "DROP TABLE ai.organization_agents; DROP TABLE ai.ai_agents;")
