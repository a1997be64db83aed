"""The web origins each organization lets call the API from a browser (CORS, answered by the
gateway): a tenant table like any other, plus one narrow read policy so the gateway's question
"does any organization allow this origin?" (a preflight names no tenant) can be answered: a
transaction that sets app.cors_origin sees the rows of exactly that origin, in every tenant,
and nothing else.

Revision ID: 0012
"""

from alembic import op

from chassis.migrate import script, tenant_table

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(op, """
        CREATE TABLE identity.organization_origins (
          organization_id uuid NOT NULL REFERENCES identity.organizations(id) ON DELETE CASCADE,
          origin text NOT NULL CHECK (length(origin) BETWEEN 1 AND 300),
          position smallint NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (organization_id, origin)
        );
        CREATE INDEX organization_origins_origin ON identity.organization_origins (origin);
    """)
    tenant_table(op, "identity.organization_origins")
    op.execute(
        "CREATE POLICY origin_lookup ON identity.organization_origins FOR SELECT "
        "USING (origin = NULLIF(current_setting('app.cors_origin', true), ''))")


def downgrade() -> None:
    op.execute("DROP TABLE identity.organization_origins")
