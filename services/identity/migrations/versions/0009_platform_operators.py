"""Platform operators, their audit trail, and the authentication time of a session.

- platform_operators: the users an operator of the platform flagged, by command
  (`python -m services.identity.operators`), never through a tenant API. Row-level security
  without FORCE: the owner (the command, as givance_owner) writes; the service role may only
  read it (no insert, update or delete policy), whatever table grants it holds.
- platform_activity: the platform audit trail (grants, revocations, platform operations);
  not tenant data (acting_organization_id is only where an operator's token came from). Read
  and append only, for every role but a superuser: row-level security forced, no update or
  delete policy.
- refresh_tokens.auth_time: when the session's user last proved who they are (password or
  MFA); a refresh keeps it, so re-authentication for sensitive changes can tell.

Revision ID: 0009
"""

from alembic import op

from chassis.migrate import script

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(op, """
        CREATE TABLE identity.platform_operators (
          user_id uuid PRIMARY KEY REFERENCES identity.users(id) ON DELETE CASCADE,
          permissions text[] NOT NULL,
          granted_by text NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );
        ALTER TABLE identity.platform_operators ENABLE ROW LEVEL SECURITY;
        CREATE POLICY read_only ON identity.platform_operators FOR SELECT USING (true);

        CREATE TABLE identity.platform_activity (
          id bigserial PRIMARY KEY,
          occurred_at timestamptz NOT NULL DEFAULT now(),
          actor text NOT NULL,
          action text NOT NULL,
          resource_type text NOT NULL,
          resource_id text NOT NULL,
          acting_organization_id uuid,
          detail jsonb NOT NULL DEFAULT '{}',
          request_id text NOT NULL DEFAULT '',
          ip_address text NOT NULL DEFAULT ''
        );
        CREATE INDEX platform_activity_newest ON identity.platform_activity (occurred_at DESC, id DESC);
        ALTER TABLE identity.platform_activity ENABLE ROW LEVEL SECURITY;
        ALTER TABLE identity.platform_activity FORCE ROW LEVEL SECURITY;
        CREATE POLICY read ON identity.platform_activity FOR SELECT USING (true);
        CREATE POLICY append ON identity.platform_activity FOR INSERT WITH CHECK (true);

        ALTER TABLE identity.refresh_tokens ADD COLUMN auth_time timestamptz;
    """)


def downgrade() -> None:
    script(op, """
        ALTER TABLE identity.refresh_tokens DROP COLUMN auth_time;
        DROP TABLE identity.platform_activity;
        DROP TABLE identity.platform_operators;
    """)
