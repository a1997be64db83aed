"""crm: clients and their contacts (seed 002), for client-service firms.

- client_number is unique per organization among live clients (a partial unique index).
- The tax id is sealed at rest (chassis.crypto, AES-256-GCM bound to the row); only its last
  four characters are kept in clear, to mask it on output.
- assigned_manager is identity's user id (another service's schema: no foreign key); the
  service checks it names an active member (crm.members).
- A client has at most one live primary contact: a partial unique index, so two concurrent
  writes cannot both win.
- Soft delete (deleted_at) with partial indexes that leave deleted rows out; merged contacts
  keep merged_into.

Revision ID: 0018
"""

from alembic import op

from chassis.migrate import script, tenant_table

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(
        op,
        """
        CREATE TABLE crm.clients (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          name text NOT NULL CHECK (btrim(name) <> ''),
          company_name text,
          client_type text NOT NULL DEFAULT 'individual'
            CHECK (client_type IN ('individual', 'business', 'nonprofit')),
          industry text,
          client_number text,
          email text,
          phone text,
          website text,
          address jsonb NOT NULL DEFAULT '{}'::jsonb,
          tax_id_sealed text,
          tax_id_last4 text,
          registration_number text,
          fiscal_year_end_month smallint CHECK (fiscal_year_end_month BETWEEN 1 AND 12),
          status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive', 'prospect')),
          acquisition_source text,
          referral_source text,
          assigned_manager uuid,
          communication_preferences jsonb NOT NULL DEFAULT '{}'::jsonb,
          service_preferences jsonb NOT NULL DEFAULT '{}'::jsonb,
          billing_address jsonb,
          payment_terms text NOT NULL DEFAULT 'net_30'
            CHECK (payment_terms IN ('due_on_receipt', 'net_15', 'net_30', 'net_45', 'net_60', 'net_90')),
          credit_limit numeric(12,2) CHECK (credit_limit >= 0),
          credit_limit_currency text CHECK (credit_limit_currency ~ '^[A-Z]{3}$'),
          created_by uuid,
          create_request_id text,
          version integer NOT NULL DEFAULT 1,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          deleted_at timestamptz,
          UNIQUE (organization_id, id),
          CONSTRAINT clients_tax_id CHECK ((tax_id_sealed IS NULL) = (tax_id_last4 IS NULL)),
          CONSTRAINT clients_credit_currency CHECK ((credit_limit IS NULL) = (credit_limit_currency IS NULL))
        );
        CREATE UNIQUE INDEX clients_number ON crm.clients (organization_id, client_number)
          WHERE client_number IS NOT NULL AND deleted_at IS NULL;
        CREATE UNIQUE INDEX clients_create_request ON crm.clients (organization_id, create_request_id)
          WHERE create_request_id IS NOT NULL;
        CREATE INDEX clients_list_order ON crm.clients (organization_id, lower(name), id) WHERE deleted_at IS NULL;
        CREATE INDEX clients_manager ON crm.clients (organization_id, assigned_manager) WHERE deleted_at IS NULL;

        CREATE TABLE crm.contacts (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          client_id uuid,
          first_name text NOT NULL CHECK (btrim(first_name) <> ''),
          last_name text NOT NULL CHECK (btrim(last_name) <> ''),
          job_title text,
          department text,
          email text,
          phone text,
          mobile text,
          is_primary boolean NOT NULL DEFAULT false,
          can_authorize boolean NOT NULL DEFAULT false,
          receives_communications boolean NOT NULL DEFAULT true,
          notes text,
          tags text[] NOT NULL DEFAULT ARRAY[]::text[],
          merged_into uuid,
          created_by uuid,
          create_request_id text,
          version integer NOT NULL DEFAULT 1,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          deleted_at timestamptz,
          UNIQUE (organization_id, id),
          FOREIGN KEY (organization_id, client_id) REFERENCES crm.clients (organization_id, id),
          FOREIGN KEY (organization_id, merged_into) REFERENCES crm.contacts (organization_id, id),
          CONSTRAINT contacts_primary_has_client CHECK (NOT is_primary OR client_id IS NOT NULL)
        );
        CREATE UNIQUE INDEX contacts_one_primary ON crm.contacts (organization_id, client_id)
          WHERE is_primary AND deleted_at IS NULL;
        CREATE UNIQUE INDEX contacts_create_request ON crm.contacts (organization_id, create_request_id)
          WHERE create_request_id IS NOT NULL;
        CREATE INDEX contacts_list_order
          ON crm.contacts (organization_id, lower(last_name), lower(first_name), id) WHERE deleted_at IS NULL;
        CREATE INDEX contacts_client ON crm.contacts (organization_id, client_id) WHERE deleted_at IS NULL;
        CREATE INDEX contacts_email ON crm.contacts (organization_id, lower(email)) WHERE deleted_at IS NULL;
        CREATE INDEX contacts_tags ON crm.contacts USING gin (tags);
        """,
    )
    tenant_table(op, "crm.clients")
    tenant_table(op, "crm.contacts")


def downgrade() -> None:
    script(op, "DROP TABLE crm.contacts; DROP TABLE crm.clients;")
