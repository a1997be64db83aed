"""An organization's life: suspended by a platform operator, closed by its owner (a grace period,
then erasure); suspensions join the revocations every service lists.

- organizations.state: active, suspended (by an operator, with a reason), closing (by its owner:
  erased at erase_at unless reopened before); state_reason, state_changed_at, erase_at;
- revocations.kind 'organization': one row per organization (subject_id ''), not_before the
  suspension's start, expires_at its end ('infinity' while it lasts); subject_id 'erased' for an
  erased organization (refused for good);
- organizations.create_request_id: CreateOrganization's idempotency key (per creating user);
- organization_erasures: the due erasures of closing organizations, claimed with FOR UPDATE
  SKIP LOCKED (not tenant data: ids and times, like the outbox; no row-level security).

Revision ID: 0015_organization_lifecycle
"""

from alembic import op

from chassis.migrate import script

revision = "0015_organization_lifecycle"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(op, """
        ALTER TABLE identity.organizations
          ADD COLUMN state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'suspended', 'closing')),
          ADD COLUMN state_reason text NOT NULL DEFAULT '' CHECK (length(state_reason) <= 500),
          ADD COLUMN state_changed_at timestamptz,
          ADD COLUMN erase_at timestamptz,
          -- CreateOrganization's request_id (AIP-155), per creating user
          ADD COLUMN create_request_id text CHECK (length(create_request_id) <= 100),
          ADD CONSTRAINT organizations_closing_erase CHECK ((state = 'closing') = (erase_at IS NOT NULL));
        CREATE UNIQUE INDEX organizations_create_request ON identity.organizations (created_by, create_request_id)
          WHERE create_request_id IS NOT NULL;
        ALTER TABLE identity.revocations DROP CONSTRAINT revocations_kind_check;
        ALTER TABLE identity.revocations
          ADD CONSTRAINT revocations_kind_check CHECK (kind IN ('membership', 'session', 'organization'));
        CREATE TABLE identity.organization_erasures (
          tenant_id uuid PRIMARY KEY,
          due_at timestamptz NOT NULL,
          locked_until timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX organization_erasures_due ON identity.organization_erasures (due_at);
    """)


def downgrade() -> None:
    script(op, """
        DROP TABLE identity.organization_erasures;
        DROP INDEX identity.organizations_create_request;
        DELETE FROM identity.revocations WHERE kind = 'organization';
        ALTER TABLE identity.revocations DROP CONSTRAINT revocations_kind_check;
        ALTER TABLE identity.revocations
          ADD CONSTRAINT revocations_kind_check CHECK (kind IN ('membership', 'session'));
        ALTER TABLE identity.organizations DROP CONSTRAINT organizations_closing_erase,
          DROP COLUMN create_request_id, DROP COLUMN erase_at, DROP COLUMN state_changed_at,
          DROP COLUMN state_reason, DROP COLUMN state;
    """)
