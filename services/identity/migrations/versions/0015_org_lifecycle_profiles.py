"""An organization's life: suspended by a platform operator, closed by its owner (a grace period,
then erasure); suspensions join the revocations every service lists. And the profiles of seed 002:
an organization's and a user's.

- organizations.state: active, suspended (by an operator, with a reason), closing (by its owner:
  erased at erase_at unless reopened before); state_reason, state_changed_at, erase_at;
- revocations.kind 'organization': one row per organization (subject_id ''), not_before the
  suspension's start, expires_at its end ('infinity' while it lasts); subject_id 'erased' for an
  erased organization (refused for good);
- organizations.create_request_id: CreateOrganization's idempotency key (per creating user);
- organizations' profile: description, logo_url, website, industry, company_size, contact_email,
  contact_phone (E.164), address (jsonb), timezone, tax_id_sealed (AES-GCM, bound to the
  organization) and tax_id_last4, registration_number; sizes checked here too;
- users: username (unique whatever its case), avatar_url, country_code, and a version (etags);
- organization_erasures: the due erasures of closing organizations, claimed with FOR UPDATE
  SKIP LOCKED (not tenant data: ids and times, like the outbox; no row-level security).

Revision ID: 0015
"""

from alembic import op

from chassis.migrate import script

revision = "0015"
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
        ALTER TABLE identity.organizations
          ADD COLUMN description text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
          ADD COLUMN logo_url text NOT NULL DEFAULT '' CHECK (length(logo_url) <= 500),
          ADD COLUMN website text NOT NULL DEFAULT '' CHECK (length(website) <= 500),
          ADD COLUMN industry text NOT NULL DEFAULT '' CHECK (length(industry) <= 100),
          ADD COLUMN company_size text NOT NULL DEFAULT ''
            CHECK (company_size IN ('', 'startup', 'sme', 'enterprise')),
          ADD COLUMN contact_email text NOT NULL DEFAULT '' CHECK (length(contact_email) <= 254),
          ADD COLUMN contact_phone text NOT NULL DEFAULT '' CHECK (contact_phone ~ '^(\\+[1-9][0-9]{6,14})?$'),
          ADD COLUMN address jsonb NOT NULL DEFAULT '{}' CHECK (pg_column_size(address) <= 4096),
          ADD COLUMN timezone text NOT NULL DEFAULT 'UTC' CHECK (length(timezone) <= 100),
          ADD COLUMN tax_id_sealed text,
          ADD COLUMN tax_id_last4 text CHECK (length(tax_id_last4) <= 4),
          ADD COLUMN registration_number text NOT NULL DEFAULT '' CHECK (length(registration_number) <= 100);
        ALTER TABLE identity.users
          ADD COLUMN username text CHECK (length(username) BETWEEN 3 AND 30),
          ADD COLUMN avatar_url text NOT NULL DEFAULT '' CHECK (length(avatar_url) <= 500),
          ADD COLUMN country_code text NOT NULL DEFAULT '' CHECK (country_code ~ '^([A-Z]{2})?$'),
          ADD COLUMN version integer NOT NULL DEFAULT 1;
        CREATE UNIQUE INDEX users_username ON identity.users (lower(username))
          WHERE username IS NOT NULL AND deleted_at IS NULL;
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
        DROP INDEX identity.users_username;
        ALTER TABLE identity.users DROP COLUMN username, DROP COLUMN avatar_url, DROP COLUMN country_code,
          DROP COLUMN version;
        ALTER TABLE identity.organizations DROP COLUMN description, DROP COLUMN logo_url, DROP COLUMN website,
          DROP COLUMN industry, DROP COLUMN company_size, DROP COLUMN contact_email, DROP COLUMN contact_phone,
          DROP COLUMN address, DROP COLUMN timezone, DROP COLUMN tax_id_sealed, DROP COLUMN tax_id_last4,
          DROP COLUMN registration_number;
        DROP INDEX identity.organizations_create_request;
        DELETE FROM identity.revocations WHERE kind = 'organization';
        ALTER TABLE identity.revocations DROP CONSTRAINT revocations_kind_check;
        ALTER TABLE identity.revocations
          ADD CONSTRAINT revocations_kind_check CHECK (kind IN ('membership', 'session'));
        ALTER TABLE identity.organizations DROP CONSTRAINT organizations_closing_erase,
          DROP COLUMN create_request_id, DROP COLUMN erase_at, DROP COLUMN state_changed_at,
          DROP COLUMN state_reason, DROP COLUMN state;
    """)
