"""crm: donors, giving totals, projects, donations, journeys, outbox.

Revision ID: 0001
"""

from alembic import op

from chassis.migrate import outbox_tables, script, tenant_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TENANT_TABLES = ["crm.journeys", "crm.donors", "crm.donor_giving", "crm.projects", "crm.donations"]


def upgrade() -> None:
    script(
        op,
        """
        CREATE TABLE crm.journeys (
          organization_id uuid PRIMARY KEY,
          graph jsonb NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE crm.donors (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          external_id text,
          donor_type text NOT NULL DEFAULT 'individual' CHECK (donor_type IN ('individual', 'couple')),
          first_name text NOT NULL DEFAULT '',
          last_name text NOT NULL DEFAULT '',
          email text,
          phone text CHECK (phone ~ '^\\+[1-9][0-9]{6,14}$'),
          spouse_first_name text,
          spouse_last_name text,
          spouse_email text,
          address_street text,
          address_city text,
          address_state text,
          address_zip text,
          address_country text NOT NULL DEFAULT 'US' CHECK (address_country ~ '^[A-Z]{2}$'),
          journey_stage text,
          ai_classification text,
          last_contact_at timestamptz,
          notes text,
          tags text[] NOT NULL DEFAULT '{}',
          custom_fields jsonb NOT NULL DEFAULT '{}',
          version integer NOT NULL DEFAULT 1,
          create_request_id text,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          deleted_at timestamptz,
          UNIQUE (organization_id, id),
          CONSTRAINT spouse_only_for_couples CHECK (
            donor_type = 'couple'
            OR (spouse_first_name IS NULL AND spouse_last_name IS NULL AND spouse_email IS NULL))
        );
        CREATE UNIQUE INDEX donors_external_id ON crm.donors (organization_id, external_id)
          WHERE external_id IS NOT NULL AND deleted_at IS NULL;
        CREATE UNIQUE INDEX donors_create_request ON crm.donors (organization_id, create_request_id)
          WHERE create_request_id IS NOT NULL;
        CREATE INDEX donors_recent ON crm.donors (organization_id, created_at DESC, id DESC)
          WHERE deleted_at IS NULL;
        CREATE INDEX donors_last_name ON crm.donors (organization_id, last_name, id) WHERE deleted_at IS NULL;
        CREATE INDEX donors_email ON crm.donors (organization_id, lower(email)) WHERE deleted_at IS NULL;
        CREATE INDEX donors_journey ON crm.donors (organization_id, journey_stage, created_at DESC, id DESC)
          WHERE deleted_at IS NULL;
        CREATE INDEX donors_tags ON crm.donors USING gin (tags) WHERE deleted_at IS NULL;

        CREATE TABLE crm.donor_giving (
          organization_id uuid NOT NULL,
          donor_id uuid NOT NULL,
          currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
          lifetime_amount numeric(14,2) NOT NULL DEFAULT 0,
          donation_count bigint NOT NULL DEFAULT 0,
          first_gift_date date,
          last_gift_date date,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (donor_id, currency),
          FOREIGN KEY (organization_id, donor_id) REFERENCES crm.donors (organization_id, id)
        );

        CREATE TABLE crm.projects (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          name text NOT NULL,
          description text,
          target_amount numeric(12,2) CHECK (target_amount >= 0),
          currency text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
          start_date date,
          end_date date,
          status text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'completed', 'cancelled')),
          settings jsonb NOT NULL DEFAULT '{}',
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          deleted_at timestamptz,
          UNIQUE (organization_id, id)
        );
        CREATE INDEX projects_status ON crm.projects (organization_id, status) WHERE deleted_at IS NULL;

        CREATE TABLE crm.donations (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          donor_id uuid NOT NULL,
          project_id uuid,
          amount numeric(12,2) NOT NULL CHECK (amount > 0),
          currency text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
          date date NOT NULL,
          payment_method text CHECK (payment_method IN ('cash', 'check', 'credit_card', 'wire', 'crypto', 'other')),
          reference_number text,
          notes text,
          is_recurring boolean NOT NULL DEFAULT false,
          recurring_frequency text,
          tax_deductible boolean NOT NULL DEFAULT true,
          receipt_sent boolean NOT NULL DEFAULT false,
          receipt_sent_date timestamptz,
          request_id text,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          FOREIGN KEY (organization_id, donor_id) REFERENCES crm.donors (organization_id, id),
          FOREIGN KEY (organization_id, project_id) REFERENCES crm.projects (organization_id, id)
        );
        CREATE INDEX donations_donor ON crm.donations (organization_id, donor_id, date DESC, id DESC);
        CREATE INDEX donations_date ON crm.donations (organization_id, date DESC, id DESC);
        CREATE INDEX donations_project ON crm.donations (organization_id, project_id) WHERE project_id IS NOT NULL;
        CREATE UNIQUE INDEX donations_request ON crm.donations (organization_id, request_id)
          WHERE request_id IS NOT NULL;
        """,
    )
    for table in TENANT_TABLES:
        tenant_table(op, table)
    outbox_tables(op, "crm")


def downgrade() -> None:
    script(op, "DROP TABLE crm.inbox, crm.outbox, crm.donations, crm.projects, crm.donor_giving, "
               "crm.donors, crm.journeys")
