"""identity: users, organizations, memberships, refresh tokens, signing keys, outbox.

Revision ID: 0001
"""

from alembic import op

from chassis.migrate import TENANT_PREDICATE, outbox_tables, script, tenant_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(
        op,
        """
        CREATE TABLE identity.organizations (
          id uuid PRIMARY KEY,
          name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
          slug text NOT NULL UNIQUE,
          created_by uuid,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          deleted_at timestamptz
        );

        CREATE TABLE identity.users (
          id uuid PRIMARY KEY,
          email text NOT NULL,
          password_hash text NOT NULL,
          first_name text NOT NULL DEFAULT '',
          last_name text NOT NULL DEFAULT '',
          default_organization_id uuid REFERENCES identity.organizations(id),
          signup_request_id text UNIQUE,
          is_active boolean NOT NULL DEFAULT true,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          deleted_at timestamptz
        );
        CREATE UNIQUE INDEX users_email ON identity.users (lower(email)) WHERE deleted_at IS NULL;

        CREATE TABLE identity.user_organizations (
          id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
          user_id uuid NOT NULL REFERENCES identity.users(id) ON DELETE CASCADE,
          organization_id uuid NOT NULL REFERENCES identity.organizations(id) ON DELETE CASCADE,
          role text NOT NULL CHECK (role IN ('owner', 'admin', 'staff', 'viewer')),
          status text NOT NULL DEFAULT 'active' CHECK (status IN ('pending', 'active', 'suspended')),
          joined_at timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (user_id, organization_id)
        );
        CREATE INDEX user_organizations_org ON identity.user_organizations (organization_id);

        CREATE TABLE identity.refresh_tokens (
          id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
          organization_id uuid NOT NULL REFERENCES identity.organizations(id) ON DELETE CASCADE,
          user_id uuid NOT NULL REFERENCES identity.users(id) ON DELETE CASCADE,
          family_id uuid NOT NULL,
          token_hash bytea NOT NULL UNIQUE,
          expires_at timestamptz NOT NULL,
          used_at timestamptz,
          revoked_at timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX refresh_tokens_family ON identity.refresh_tokens (organization_id, family_id);

        CREATE TABLE identity.signing_keys (
          kid text PRIMARY KEY,
          private_key_sealed text NOT NULL,
          public_jwk jsonb NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          retired_at timestamptz
        );
        """
    )
    # An organization is its own tenant: the policy is on its id.
    op.execute("ALTER TABLE identity.organizations ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE identity.organizations FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON identity.organizations "
        f"USING (id = {TENANT_PREDICATE}) WITH CHECK (id = {TENANT_PREDICATE})"
    )
    tenant_table(op, "identity.user_organizations")
    tenant_table(op, "identity.refresh_tokens")
    outbox_tables(op, "identity")


def downgrade() -> None:
    script(
        op,
        "DROP TABLE identity.inbox, identity.outbox, identity.signing_keys, identity.refresh_tokens, "
        "identity.user_organizations, identity.users, identity.organizations"
    )
