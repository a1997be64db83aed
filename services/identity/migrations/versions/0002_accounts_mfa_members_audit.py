"""identity, complete: verification, throttling, KYC, MFA, trusted devices, custom roles,
invitations, staff, service accounts, sessions, and the audit trail (partitioned by month).

Revision ID: 0002
"""

from alembic import op

from chassis.migrate import script, tenant_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(
        op,
        """
        ALTER TABLE identity.organizations
          ADD COLUMN domain text,
          ADD COLUMN mfa_required boolean NOT NULL DEFAULT false,
          ADD COLUMN version integer NOT NULL DEFAULT 1;
        CREATE UNIQUE INDEX organizations_domain ON identity.organizations (lower(domain))
          WHERE domain IS NOT NULL AND deleted_at IS NULL;

        ALTER TABLE identity.users
          ADD COLUMN email_verified_at timestamptz,
          ADD COLUMN phone text CHECK (phone ~ '^\\+[1-9][0-9]{6,14}$'),
          ADD COLUMN phone_verified_at timestamptz,
          ADD COLUMN password_changed_at timestamptz NOT NULL DEFAULT now(),
          ADD COLUMN date_of_birth date,
          ADD COLUMN national_id_sealed text,
          ADD COLUMN national_id_last4 text,
          ADD COLUMN national_id_type text
            CHECK (national_id_type IN ('ssn', 'pan', 'passport', 'national_id', 'other')),
          ADD COLUMN address text,
          ADD COLUMN city text,
          ADD COLUMN state text,
          ADD COLUMN zip_code text,
          ADD COLUMN country text,
          ADD COLUMN emergency_contact_name text,
          ADD COLUMN emergency_contact_phone text,
          ADD COLUMN emergency_contact_relation text,
          ADD COLUMN id_document_url text,
          ADD COLUMN address_proof_url text,
          ADD COLUMN kyc_status text NOT NULL DEFAULT 'pending'
            CHECK (kyc_status IN ('pending', 'verified', 'rejected')),
          ADD COLUMN kyc_verified_at timestamptz,
          ADD COLUMN kyc_rejection_reason text,
          ADD COLUMN kyc_submitted_at timestamptz;

        -- Single-use, expiring secrets sent to a user (email verification, password reset,
        -- phone codes); only their SHA-256 is stored.
        CREATE TABLE identity.user_tokens (
          id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
          user_id uuid NOT NULL REFERENCES identity.users(id) ON DELETE CASCADE,
          purpose text NOT NULL CHECK (purpose IN ('email_verification', 'password_reset', 'phone_verification')),
          token_hash bytea NOT NULL,
          target text,
          attempts integer NOT NULL DEFAULT 0,
          expires_at timestamptz NOT NULL,
          used_at timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE UNIQUE INDEX user_tokens_hash ON identity.user_tokens (purpose, token_hash);
        CREATE INDEX user_tokens_user ON identity.user_tokens (user_id, purpose) WHERE used_at IS NULL;

        -- Login throttling: per account (by normalized email, known or not) and per client address.
        CREATE TABLE identity.login_throttle (
          key text PRIMARY KEY,
          failures integer NOT NULL DEFAULT 0,
          locked_until timestamptz,
          last_failure_at timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE identity.user_mfa (
          user_id uuid PRIMARY KEY REFERENCES identity.users(id) ON DELETE CASCADE,
          totp_secret_sealed text,
          enabled boolean NOT NULL DEFAULT false,
          confirmed_at timestamptz,
          totp_last_step bigint NOT NULL DEFAULT 0,
          backup_code_hashes text[] NOT NULL DEFAULT '{}',
          backup_codes_used text[] NOT NULL DEFAULT '{}',
          last_verified_at timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );

        -- A login that passed the password and waits for the second factor.
        CREATE TABLE identity.mfa_challenges (
          id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
          organization_id uuid NOT NULL REFERENCES identity.organizations(id) ON DELETE CASCADE,
          user_id uuid NOT NULL REFERENCES identity.users(id) ON DELETE CASCADE,
          challenge_hash bytea NOT NULL UNIQUE,
          attempts integer NOT NULL DEFAULT 0,
          expires_at timestamptz NOT NULL,
          used_at timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE identity.trusted_devices (
          id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
          user_id uuid NOT NULL REFERENCES identity.users(id) ON DELETE CASCADE,
          device_hash bytea NOT NULL UNIQUE,
          device_name text,
          ip_address text,
          user_agent text,
          expires_at timestamptz NOT NULL,
          last_used_at timestamptz,
          revoked_at timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX trusted_devices_user ON identity.trusted_devices (user_id) WHERE revoked_at IS NULL;

        CREATE TABLE identity.roles (
          id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
          organization_id uuid NOT NULL REFERENCES identity.organizations(id) ON DELETE CASCADE,
          name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
          description text NOT NULL DEFAULT '',
          permissions text[] NOT NULL DEFAULT '{}',
          version integer NOT NULL DEFAULT 1,
          request_id text,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, id)
        );
        CREATE UNIQUE INDEX roles_name ON identity.roles (organization_id, lower(name));
        CREATE UNIQUE INDEX roles_request ON identity.roles (organization_id, request_id) WHERE request_id IS NOT NULL;

        ALTER TABLE identity.user_organizations
          DROP CONSTRAINT user_organizations_role_check,
          ADD CONSTRAINT user_organizations_role_check
            CHECK (role IN ('owner', 'admin', 'staff', 'viewer', 'custom')),
          ADD COLUMN custom_role_id uuid,
          ADD CONSTRAINT user_organizations_custom_role
            FOREIGN KEY (organization_id, custom_role_id) REFERENCES identity.roles (organization_id, id),
          ADD CONSTRAINT custom_role_iff_custom CHECK ((role = 'custom') = (custom_role_id IS NOT NULL)),
          ADD COLUMN permissions_override jsonb NOT NULL DEFAULT '{}',
          ADD COLUMN invited_by uuid,
          ADD COLUMN last_active_at timestamptz,
          ADD COLUMN version integer NOT NULL DEFAULT 1;

        CREATE TABLE identity.invitations (
          id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
          organization_id uuid NOT NULL REFERENCES identity.organizations(id) ON DELETE CASCADE,
          email text NOT NULL,
          role text NOT NULL CHECK (role IN ('owner', 'admin', 'staff', 'viewer', 'custom')),
          custom_role_id uuid,
          token_hash bytea NOT NULL UNIQUE,
          invited_by uuid NOT NULL,
          expires_at timestamptz NOT NULL,
          accepted_at timestamptz,
          accepted_by uuid,
          revoked_at timestamptz,
          request_id text,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          FOREIGN KEY (organization_id, custom_role_id) REFERENCES identity.roles (organization_id, id)
        );
        CREATE INDEX invitations_org ON identity.invitations (organization_id, created_at DESC);
        CREATE UNIQUE INDEX invitations_request ON identity.invitations (organization_id, request_id)
          WHERE request_id IS NOT NULL;

        -- When a membership changed: tokens issued before not_before are refused everywhere.
        CREATE TABLE identity.membership_revocations (
          organization_id uuid NOT NULL REFERENCES identity.organizations(id) ON DELETE CASCADE,
          user_id uuid NOT NULL,
          not_before timestamptz NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (organization_id, user_id)
        );

        CREATE TABLE identity.staff (
          id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
          organization_id uuid NOT NULL REFERENCES identity.organizations(id) ON DELETE CASCADE,
          user_id uuid NOT NULL REFERENCES identity.users(id) ON DELETE CASCADE,
          email_signature text NOT NULL DEFAULT '',
          gmail_email text,
          gmail_refresh_token_sealed text,
          microsoft_email text,
          microsoft_refresh_token_sealed text,
          is_active boolean NOT NULL DEFAULT true,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, user_id)
        );

        CREATE TABLE identity.service_accounts (
          id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
          organization_id uuid NOT NULL REFERENCES identity.organizations(id) ON DELETE CASCADE,
          name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
          client_id text NOT NULL UNIQUE,
          secret_hash bytea NOT NULL,
          permissions text[] NOT NULL DEFAULT '{}',
          created_by uuid,
          deleted_at timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );

        ALTER TABLE identity.refresh_tokens
          ADD COLUMN session_created_at timestamptz NOT NULL DEFAULT now(),
          ADD COLUMN user_agent text,
          ADD COLUMN ip_address text;

        -- The audit trail: partitioned by month; identity_audit.ensure_partitions() adds months.
        CREATE TABLE identity.activity_logs (
          id uuid NOT NULL DEFAULT gen_random_uuid(),
          organization_id uuid NOT NULL,
          occurred_at timestamptz NOT NULL,
          actor_id text NOT NULL DEFAULT '',
          actor_kind text NOT NULL DEFAULT 'user',
          action text NOT NULL,
          resource_type text NOT NULL DEFAULT '',
          resource_id text NOT NULL DEFAULT '',
          before jsonb,
          after jsonb,
          ip_address text,
          request_id text,
          service text NOT NULL DEFAULT '',
          event_id uuid,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (occurred_at, id)
        ) PARTITION BY RANGE (occurred_at);
        CREATE INDEX activity_logs_org_time ON identity.activity_logs (organization_id, occurred_at DESC, id DESC);
        CREATE INDEX activity_logs_resource ON identity.activity_logs (organization_id, resource_type, resource_id);

        -- Creates the monthly partitions from `first` for `months` months, with row-level
        -- security on each (a partition is a table of its own to RLS).
        CREATE FUNCTION identity.ensure_activity_partitions(first date, months integer) RETURNS void
        LANGUAGE plpgsql AS $$
        DECLARE
          m date;
          part text;
        BEGIN
          FOR i IN 0..months - 1 LOOP
            m := date_trunc('month', first)::date + make_interval(months => i);
            part := 'activity_logs_' || to_char(m, 'YYYY_MM');
            IF to_regclass('identity.' || part) IS NULL THEN
              EXECUTE format('CREATE TABLE identity.%I PARTITION OF identity.activity_logs
                              FOR VALUES FROM (%L) TO (%L)', part, m, m + interval '1 month');
              EXECUTE format('ALTER TABLE identity.%I ENABLE ROW LEVEL SECURITY', part);
              EXECUTE format('ALTER TABLE identity.%I FORCE ROW LEVEL SECURITY', part);
              EXECUTE format('CREATE POLICY tenant_isolation ON identity.%I
                USING (organization_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid)
                WITH CHECK (organization_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid)',
                part);
            END IF;
          END LOOP;
        END $$;
        SELECT identity.ensure_activity_partitions((now() - interval '1 month')::date, 15);
        CREATE TABLE identity.activity_logs_default PARTITION OF identity.activity_logs DEFAULT;
        """,
    )
    for table in ("identity.mfa_challenges", "identity.roles", "identity.invitations",
                  "identity.membership_revocations", "identity.staff", "identity.service_accounts",
                  "identity.activity_logs", "identity.activity_logs_default"):
        tenant_table(op, table)
    # The app role may create next months' partitions (owned by givance_owner, through the function).
    script(op, """
        ALTER FUNCTION identity.ensure_activity_partitions(date, integer) SECURITY DEFINER;
        ALTER FUNCTION identity.ensure_activity_partitions(date, integer) SET search_path = identity, pg_temp;
        REVOKE ALL ON FUNCTION identity.ensure_activity_partitions(date, integer) FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION identity.ensure_activity_partitions(date, integer) TO givance_identity;
    """)


def downgrade() -> None:
    script(op, """
        DROP FUNCTION identity.ensure_activity_partitions(date, integer);
        DROP TABLE identity.activity_logs, identity.service_accounts, identity.staff,
          identity.membership_revocations, identity.invitations, identity.trusted_devices,
          identity.mfa_challenges, identity.user_mfa, identity.login_throttle, identity.user_tokens;
        ALTER TABLE identity.user_organizations DROP COLUMN custom_role_id, DROP COLUMN permissions_override,
          DROP COLUMN invited_by, DROP COLUMN last_active_at, DROP COLUMN version;
        DROP TABLE identity.roles;
    """)
