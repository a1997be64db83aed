"""Platform service principals: a service's own credential (crm, ai, ...), which identity
exchanges for a short-lived token acting for one organization (handlers/tenant_tokens.py).

Created, granted, rotated and revoked only by the operator command
(`python -m services.identity.principals`, as givance_owner), never through an API: row-level
security without FORCE, one read-only policy, so identity's service role may read the table and
write nothing, whatever table grants it holds (as identity.platform_operators, migration 0009).
Not tenant data (no organization_id): a principal acts for whichever organization it asks for.

Revision ID: 0014
"""

from alembic import op

from chassis.migrate import script

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(op, """
        CREATE TABLE identity.service_principals (
          id uuid PRIMARY KEY,
          -- the client id: the service's name
          name text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9_-]{0,62}$'),
          secret_hash bytea NOT NULL,
          permissions text[] NOT NULL,
          created_by text NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          revoked_at timestamptz
        );
        ALTER TABLE identity.service_principals ENABLE ROW LEVEL SECURITY;
        CREATE POLICY read_only ON identity.service_principals FOR SELECT USING (true);
    """)


def downgrade() -> None:
    script(op, "DROP TABLE identity.service_principals;")
