"""billing: the organization as a customer of the platform's Stripe account, and the card saved
for its subscription (masked: the provider's ids, brand, last four digits, expiry); webhook events
stored by one statement that sets its tenant itself (billing.store_webhook_events), so an event
that asks for nothing more is stored and committed in one round trip.

Revision ID: 0003
"""

from alembic import op

from chassis.migrate import script, tenant_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(
        op,
        """
        -- One row per organization once it asked to save a card: its customer at the platform's
        -- payment provider, and its default payment method when a SetupIntent succeeded (the
        -- newest one wins: setup_time orders them). Never a card number.
        CREATE TABLE billing.platform_customers (
          organization_id uuid PRIMARY KEY,
          provider text NOT NULL DEFAULT 'stripe' CHECK (provider IN ('stripe')),
          customer_id text NOT NULL CHECK (length(customer_id) BETWEEN 1 AND 255),
          payment_method_id text CHECK (length(payment_method_id) BETWEEN 1 AND 255),
          brand text NOT NULL DEFAULT '' CHECK (length(brand) <= 32),
          last4 text NOT NULL DEFAULT '' CHECK (last4 ~ '^([0-9]{4})?$'),
          exp_month integer NOT NULL DEFAULT 0 CHECK (exp_month BETWEEN 0 AND 12),
          exp_year integer NOT NULL DEFAULT 0 CHECK (exp_year BETWEEN 0 AND 9999),
          setup_intent_id text,
          setup_time timestamptz,
          version integer NOT NULL DEFAULT 1,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );
        """,
    )
    tenant_table(op, "billing.platform_customers")
    script(
        op,
        """
        -- Gateway events, stored once per (organization, gateway, event id), only for a config of the
        -- organization that is live and active, in one statement: the tenant is set first (local
        -- to the transaction, as every unit of work sets it), so it runs as a transaction of its own
        -- (committed before it answers) or inside a unit of work. Returns the active configs among
        -- those named and the "gateway event_id" of the events stored now (the others: replays).
        CREATE FUNCTION billing.store_webhook_events(org uuid, cfgs uuid[], gateways text[], eids text[],
            etypes text[], pids text[], payloads text[], statuses text[])
          RETURNS TABLE (active uuid[], stored text[]) LANGUAGE plpgsql AS $$
        #variable_conflict use_column
        BEGIN
          PERFORM set_config('app.tenant_id', org::text, true);
          RETURN QUERY
            WITH cfg AS (SELECT c.id FROM billing.gateway_configs c WHERE c.organization_id = org
                           AND c.id = ANY(cfgs) AND c.deleted_at IS NULL AND c.active),
                 ins AS (INSERT INTO billing.webhook_events (id, organization_id, config_id, gateway, event_id,
                           event_type, payment_id, payload, status, processed_at)
                         SELECT gen_random_uuid(), org, e.cfg, e.gateway, e.eid, e.etype, e.pid,
                                CAST(e.payload AS jsonb), e.status, now()
                         FROM unnest(cfgs, gateways, eids, etypes, pids, payloads, statuses)
                           AS e(cfg, gateway, eid, etype, pid, payload, status)
                         WHERE e.cfg IN (SELECT cfg.id FROM cfg)
                         ON CONFLICT (organization_id, gateway, event_id) DO NOTHING
                         RETURNING webhook_events.gateway, webhook_events.event_id)
            SELECT (SELECT array_agg(cfg.id) FROM cfg), (SELECT array_agg(ins.gateway || ' ' || ins.event_id) FROM ins);
        END $$;

        -- The statement above checks the config; configs are only ever soft-deleted (deleted_at),
        -- so the event's config always exists, without a foreign key check (a per-row trigger and a
        -- lock on the config's row, about half of an event's insert) on every event stored.
        ALTER TABLE billing.webhook_events DROP CONSTRAINT webhook_events_config_id_fkey;
        CREATE FUNCTION billing.gateway_config_kept() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'a gateway config is deleted softly (deleted_at): its webhook events refer to it'
            USING ERRCODE = 'restrict_violation';
        END $$;
        CREATE TRIGGER gateway_configs_kept BEFORE DELETE ON billing.gateway_configs
          FOR EACH ROW EXECUTE FUNCTION billing.gateway_config_kept();
        """,
    )


def downgrade() -> None:
    script(
        op,
        """
        DROP TRIGGER gateway_configs_kept ON billing.gateway_configs;
        DROP FUNCTION billing.gateway_config_kept();
        ALTER TABLE billing.webhook_events ADD CONSTRAINT webhook_events_config_id_fkey
          FOREIGN KEY (config_id) REFERENCES billing.gateway_configs (id);
        DROP FUNCTION billing.store_webhook_events(uuid, uuid[], text[], text[], text[], text[], text[], text[]);
        DROP TABLE billing.platform_customers;
        """,
    )
