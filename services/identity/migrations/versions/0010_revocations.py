"""Revocations every service loads at start: membership and session revocations in one table.

Not tenant data (ids and times only): every service lists them, across all organizations, to
refuse revoked access tokens (chassis.revocation); so, like the outbox, it keys the
organization as tenant_id and carries no row-level security.
A row is kept until the last token it refuses has expired (expires_at), then pruned.
membership_revocations (written, never read) moves here.

Revision ID: 0010
"""

from alembic import op

from chassis.migrate import script, tenant_table

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(op, """
        CREATE TABLE identity.revocations (
          kind text NOT NULL CHECK (kind IN ('membership', 'session')),
          tenant_id uuid NOT NULL,
          -- membership: the user or service account; session: the session (refresh family) id
          subject_id text NOT NULL,
          not_before timestamptz NOT NULL,
          expires_at timestamptz NOT NULL,
          recorded_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (kind, subject_id, tenant_id)
        );
        CREATE INDEX revocations_recorded ON identity.revocations (recorded_at);
        CREATE INDEX revocations_expires ON identity.revocations (expires_at);
        INSERT INTO identity.revocations (kind, tenant_id, subject_id, not_before, expires_at)
          SELECT 'membership', organization_id, user_id::text, not_before, not_before + interval '1 day'
          FROM identity.membership_revocations;
        DROP TABLE identity.membership_revocations;
    """)


def downgrade() -> None:
    script(op, """
        CREATE TABLE identity.membership_revocations (
          organization_id uuid NOT NULL REFERENCES identity.organizations(id) ON DELETE CASCADE,
          user_id uuid NOT NULL,
          not_before timestamptz NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (organization_id, user_id)
        );
        DROP TABLE identity.revocations;
    """)
    tenant_table(op, "identity.membership_revocations")
