"""comms: settings, templates, messages and their send queue, the communications log,
suppressions and consent, tracking links and email events, webhook events, WhatsApp staff.

Revision ID: 0001
"""

from alembic import op

from chassis.migrate import outbox_tables, script, tenant_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TENANT_TABLES = ["comms.settings", "comms.templates", "comms.template_versions", "comms.messages",
                 "comms.communications", "comms.suppressions", "comms.consent_changes", "comms.links",
                 "comms.email_events", "comms.webhook_events", "comms.whatsapp_staff"]

CHANNELS = "'email', 'phone', 'meeting', 'letter', 'sms', 'whatsapp', 'other'"


def upgrade() -> None:
    script(
        op,
        f"""
        CREATE TABLE comms.settings (
          organization_id uuid PRIMARY KEY,
          from_name text NOT NULL DEFAULT '',
          from_address text NOT NULL DEFAULT '',
          reply_to text NOT NULL DEFAULT '',
          signature text NOT NULL DEFAULT '',
          dkim_domain text NOT NULL DEFAULT '',
          dkim_selector text NOT NULL DEFAULT '',
          dkim_key_sealed text,
          thank_you_enabled boolean NOT NULL DEFAULT false,
          thank_you_template text NOT NULL DEFAULT '',
          thank_you_first_gift_only boolean NOT NULL DEFAULT false,
          thank_you_delay_seconds integer NOT NULL DEFAULT 0 CHECK (thank_you_delay_seconds >= 0),
          send_rate_per_minute integer NOT NULL DEFAULT 6000 CHECK (send_rate_per_minute BETWEEN 1 AND 100000),
          double_opt_in boolean NOT NULL DEFAULT false,
          rate_tokens double precision NOT NULL DEFAULT 0,
          rate_at timestamptz,
          version integer NOT NULL DEFAULT 1,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE comms.templates (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          name text NOT NULL,
          channel text NOT NULL CHECK (channel IN ('email', 'sms', 'whatsapp')),
          category text NOT NULL,
          current_version integer NOT NULL DEFAULT 1,
          create_request_id text,
          version integer NOT NULL DEFAULT 1,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          deleted_at timestamptz,
          UNIQUE (organization_id, id)
        );
        CREATE UNIQUE INDEX templates_name ON comms.templates (organization_id, name) WHERE deleted_at IS NULL;
        CREATE UNIQUE INDEX templates_create_request ON comms.templates (organization_id, create_request_id)
          WHERE create_request_id IS NOT NULL;

        CREATE TABLE comms.template_versions (
          organization_id uuid NOT NULL,
          template_id uuid NOT NULL,
          version integer NOT NULL,
          subject text NOT NULL DEFAULT '',
          body_text text NOT NULL DEFAULT '',
          body_html text NOT NULL DEFAULT '',
          variables text[] NOT NULL DEFAULT '{{}}',
          created_by uuid,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (organization_id, template_id, version),
          FOREIGN KEY (organization_id, template_id) REFERENCES comms.templates (organization_id, id)
        );

        CREATE TABLE comms.messages (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          channel text NOT NULL CHECK (channel IN ('email', 'sms', 'whatsapp')),
          donor_id uuid,
          to_address text NOT NULL,
          template_name text NOT NULL DEFAULT '',
          template_version integer NOT NULL DEFAULT 0,
          category text NOT NULL DEFAULT 'transactional',
          bulk boolean NOT NULL DEFAULT false,
          subject text NOT NULL DEFAULT '',
          body_text text NOT NULL DEFAULT '',
          body_html text NOT NULL DEFAULT '',
          attachment_name text,
          attachment bytea,
          -- bodies sealed at rest (chassis.crypto): identity's links and codes
          sealed boolean NOT NULL DEFAULT false,
          status text NOT NULL DEFAULT 'queued'
            CHECK (status IN ('queued', 'sent', 'delivered', 'bounced', 'suppressed', 'failed')),
          status_reason text NOT NULL DEFAULT '',
          attempt_count integer NOT NULL DEFAULT 0,
          rfc822_message_id text NOT NULL,
          create_request_id text,
          -- what a message is sent once for ("thank-you:<donation id>"): never twice
          source_key text,
          scheduled_at timestamptz NOT NULL DEFAULT now(),
          sent_at timestamptz,
          open_count integer NOT NULL DEFAULT 0,
          click_count integer NOT NULL DEFAULT 0,
          created_by uuid,
          version integer NOT NULL DEFAULT 1,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, id)
        );
        CREATE UNIQUE INDEX messages_create_request ON comms.messages (organization_id, create_request_id)
          WHERE create_request_id IS NOT NULL;
        CREATE UNIQUE INDEX messages_source_key ON comms.messages (organization_id, source_key)
          WHERE source_key IS NOT NULL;
        CREATE INDEX messages_recent ON comms.messages (organization_id, created_at DESC, id DESC);
        CREATE INDEX messages_donor ON comms.messages (organization_id, donor_id, created_at DESC, id DESC)
          WHERE donor_id IS NOT NULL;
        CREATE UNIQUE INDEX messages_rfc822 ON comms.messages (rfc822_message_id);

        -- The send queue: due actions claimed with FOR UPDATE SKIP LOCKED. Infrastructure like the
        -- outbox (the sender claims every tenant's due jobs), so it keys the tenant as tenant_id and
        -- holds no tenant data: the message itself stays in comms.messages under RLS.
        CREATE TABLE comms.send_jobs (
          message_id uuid PRIMARY KEY,
          tenant_id uuid NOT NULL,
          due_at timestamptz NOT NULL DEFAULT now(),
          attempts integer NOT NULL DEFAULT 0,
          locked_until timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX send_jobs_due ON comms.send_jobs (due_at);

        CREATE TABLE comms.communications (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          donor_id uuid NOT NULL,
          channel text NOT NULL CHECK (channel IN ({CHANNELS})),
          direction text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
          subject text NOT NULL DEFAULT '',
          content text NOT NULL DEFAULT '',
          occurred_at timestamptz NOT NULL DEFAULT now(),
          logged_by uuid,
          message_id uuid,
          create_request_id text,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE UNIQUE INDEX communications_create_request ON comms.communications (organization_id, create_request_id)
          WHERE create_request_id IS NOT NULL;
        CREATE INDEX communications_recent ON comms.communications (organization_id, occurred_at DESC, id DESC);
        CREATE INDEX communications_donor ON comms.communications
          (organization_id, donor_id, occurred_at DESC, id DESC);

        CREATE TABLE comms.suppressions (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          address text NOT NULL,
          reason text NOT NULL CHECK (reason IN ('unsubscribed', 'hard_bounce', 'complaint', 'manual')),
          note text NOT NULL DEFAULT '',
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, address)
        );
        CREATE INDEX suppressions_recent ON comms.suppressions (organization_id, created_at DESC, id DESC);

        CREATE TABLE comms.consent_changes (
          id bigserial PRIMARY KEY,
          organization_id uuid NOT NULL,
          address text NOT NULL,
          category text NOT NULL,
          granted boolean NOT NULL,
          source text NOT NULL,
          message_id uuid,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX consent_changes_address ON comms.consent_changes (organization_id, address, category, id DESC);

        -- Tracked links: the destination stays here; the token names the row, never a URL.
        CREATE TABLE comms.links (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          message_id uuid NOT NULL,
          url text NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          FOREIGN KEY (organization_id, message_id) REFERENCES comms.messages (organization_id, id)
        );

        CREATE TABLE comms.email_events (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          message_id uuid NOT NULL,
          kind text NOT NULL
            CHECK (kind IN ('sent', 'delivered', 'opened', 'clicked', 'bounced', 'complained', 'unsubscribed',
                            'suppressed')),
          machine boolean NOT NULL DEFAULT false,
          url text,
          user_agent text,
          detail text NOT NULL DEFAULT '',
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX email_events_message ON comms.email_events (organization_id, message_id, created_at);

        CREATE TABLE comms.webhook_events (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          provider text NOT NULL,
          provider_event_id text NOT NULL,
          event_type text NOT NULL DEFAULT '',
          payload jsonb NOT NULL,
          processed_at timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (provider, provider_event_id)
        );

        CREATE TABLE comms.whatsapp_staff (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          phone text NOT NULL CHECK (phone ~ '^\\+[1-9][0-9]{{6,14}}$'),
          user_id uuid,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, phone)
        );

        -- Which organization an inbound WhatsApp number belongs to: the webhook arrives without a
        -- tenant, so this routing table is infrastructure like the send queue (tenant_id, no RLS),
        -- written with whatsapp_staff in the same transaction. A number belongs to one organization.
        CREATE TABLE comms.whatsapp_routes (
          phone text PRIMARY KEY,
          tenant_id uuid NOT NULL,
          staff_id uuid NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );

        -- Inbound webhooks no organization claims (an unknown WhatsApp number): kept, answered with
        -- nothing. Infrastructure: no tenant to scope them by.
        CREATE TABLE comms.unrouted_webhooks (
          provider text NOT NULL,
          provider_event_id text NOT NULL,
          payload jsonb NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (provider, provider_event_id)
        );
        """,
    )
    for table in TENANT_TABLES:
        tenant_table(op, table)
    outbox_tables(op, "comms")


def downgrade() -> None:
    script(op, "DROP SCHEMA comms CASCADE")
