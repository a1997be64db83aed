"""billing: the plan catalog and coupons (platform-wide), subscriptions, due actions, invoices,
usage counters, gateway configs, webhook events, payments, outbox.

Revision ID: 0001
"""

from alembic import op

from chassis.migrate import outbox_tables, script, tenant_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TENANT_TABLES = ["billing.subscriptions", "billing.invoice_counters", "billing.invoices", "billing.invoice_lines",
                 "billing.usage_counters", "billing.gateway_configs", "billing.webhook_events", "billing.payments"]


def upgrade() -> None:
    script(
        op,
        """
        -- The platform's catalog: not tenant data (every organization reads it; only platform
        -- operators publish versions, through PlanService with platform.plans.write).
        CREATE TABLE billing.plans (
          id uuid PRIMARY KEY,
          code text NOT NULL CHECK (code ~ '^[a-z0-9][a-z0-9-]{0,49}$'),
          version integer NOT NULL CHECK (version > 0),
          name text NOT NULL,
          currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
          monthly_price numeric(12,2) CHECK (monthly_price >= 0),
          yearly_price numeric(12,2) CHECK (yearly_price >= 0),
          trial_days integer NOT NULL DEFAULT 0 CHECK (trial_days BETWEEN 0 AND 365),
          tax_rate numeric(7,6) NOT NULL DEFAULT 0 CHECK (tax_rate >= 0 AND tax_rate < 1),
          entitlements jsonb NOT NULL DEFAULT '{}',
          created_by text NOT NULL DEFAULT '',
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (code, version),
          CHECK (monthly_price IS NOT NULL OR yearly_price IS NOT NULL)
        );

        CREATE TABLE billing.coupons (
          code text PRIMARY KEY CHECK (code ~ '^[A-Z0-9][A-Z0-9-]{0,49}$'),
          percent_off numeric(5,2) CHECK (percent_off > 0 AND percent_off <= 100),
          amount_off numeric(12,2) CHECK (amount_off > 0),
          currency text CHECK (currency ~ '^[A-Z]{3}$'),
          duration text NOT NULL CHECK (duration IN ('once', 'repeating', 'forever')),
          duration_periods integer,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          CHECK ((percent_off IS NULL) <> (amount_off IS NULL)),
          CHECK (amount_off IS NULL OR currency IS NOT NULL)
        );

        CREATE TABLE billing.subscriptions (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL UNIQUE,
          plan_id uuid NOT NULL REFERENCES billing.plans (id),
          billing_cycle text NOT NULL DEFAULT 'monthly' CHECK (billing_cycle IN ('monthly', 'yearly')),
          status text NOT NULL CHECK (status IN ('trial', 'active', 'past_due', 'paused', 'cancelled', 'unpaid')),
          trial_end timestamptz,
          current_period_start timestamptz NOT NULL,
          current_period_end timestamptz NOT NULL,
          cancel_at_period_end boolean NOT NULL DEFAULT false,
          pending_plan_id uuid REFERENCES billing.plans (id),
          pending_cycle text CHECK (pending_cycle IN ('monthly', 'yearly')),
          payment_attempts integer NOT NULL DEFAULT 0,
          coupon_code text REFERENCES billing.coupons (code),
          coupon_periods_left integer,
          paused_at timestamptz,
          cancelled_at timestamptz,
          version integer NOT NULL DEFAULT 1,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );

        -- What is due later (renewal, trial end, dunning retries, a downgrade or cancellation at
        -- the period's end): claimed with FOR UPDATE SKIP LOCKED by whichever replica polls, done
        -- once per (subscription, kind, period). Infrastructure like the outbox: the scheduler
        -- claims every tenant's rows, so the tenant is keyed tenant_id and the action runs in
        -- that tenant's unit of work.
        CREATE TABLE billing.due_actions (
          id bigserial PRIMARY KEY,
          tenant_id uuid NOT NULL,
          subscription_id uuid NOT NULL,
          kind text NOT NULL CHECK (kind IN ('renew', 'trial_end', 'dunning_retry', 'period_end')),
          period_key text NOT NULL,
          due_at timestamptz NOT NULL,
          done_at timestamptz,
          outcome text,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (subscription_id, kind, period_key)
        );
        CREATE INDEX due_actions_pending ON billing.due_actions (due_at) WHERE done_at IS NULL;

        CREATE TABLE billing.invoice_counters (
          organization_id uuid PRIMARY KEY,
          last_number integer NOT NULL DEFAULT 0,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE billing.invoices (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          subscription_id uuid,
          number integer,
          kind text NOT NULL DEFAULT 'invoice' CHECK (kind IN ('invoice', 'credit_note')),
          status text NOT NULL CHECK (status IN ('draft', 'open', 'paid', 'void', 'uncollectible')),
          corrects_invoice_id uuid REFERENCES billing.invoices (id),
          currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
          period_start timestamptz,
          period_end timestamptz,
          subtotal numeric(12,2) NOT NULL DEFAULT 0,
          discount numeric(12,2) NOT NULL DEFAULT 0,
          tax_rate numeric(7,6) NOT NULL DEFAULT 0,
          tax numeric(12,2) NOT NULL DEFAULT 0,
          total numeric(12,2) NOT NULL DEFAULT 0,
          reason text,
          create_request_id text,
          finalized_at timestamptz,
          paid_at timestamptz,
          voided_at timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, id),
          CHECK ((status = 'draft') = (number IS NULL))
        );
        CREATE UNIQUE INDEX invoices_number ON billing.invoices (organization_id, number) WHERE number IS NOT NULL;
        CREATE UNIQUE INDEX invoices_request ON billing.invoices (organization_id, create_request_id)
          WHERE create_request_id IS NOT NULL;
        CREATE INDEX invoices_recent ON billing.invoices (organization_id, created_at DESC, id DESC);

        CREATE TABLE billing.invoice_lines (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          invoice_id uuid NOT NULL,
          position integer NOT NULL,
          kind text NOT NULL CHECK (kind IN ('plan', 'proration', 'usage', 'discount', 'credit')),
          description text NOT NULL,
          quantity numeric(14,4) NOT NULL DEFAULT 1,
          unit_amount numeric(12,2) NOT NULL,
          amount numeric(12,2) NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          FOREIGN KEY (organization_id, invoice_id) REFERENCES billing.invoices (organization_id, id),
          UNIQUE (invoice_id, position)
        );

        -- A finalized invoice is never edited: only its status moves on (paid, void, uncollectible).
        CREATE FUNCTION billing.invoice_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF OLD.status <> 'draft' AND (NEW.subtotal, NEW.discount, NEW.tax, NEW.total, NEW.number, NEW.currency,
               NEW.tax_rate) IS DISTINCT FROM (OLD.subtotal, OLD.discount, OLD.tax, OLD.total, OLD.number,
               OLD.currency, OLD.tax_rate) THEN
            RAISE EXCEPTION 'invoice % is finalized', OLD.id USING ERRCODE = 'check_violation';
          END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER invoices_immutable BEFORE UPDATE ON billing.invoices
          FOR EACH ROW EXECUTE FUNCTION billing.invoice_immutable();
        CREATE FUNCTION billing.invoice_line_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF EXISTS (SELECT 1 FROM billing.invoices i WHERE i.id = COALESCE(NEW.invoice_id, OLD.invoice_id)
                     AND i.status <> 'draft') THEN
            RAISE EXCEPTION 'invoice is finalized' USING ERRCODE = 'check_violation';
          END IF;
          RETURN COALESCE(NEW, OLD);
        END $$;
        CREATE TRIGGER invoice_lines_immutable BEFORE INSERT OR UPDATE OR DELETE ON billing.invoice_lines
          FOR EACH ROW EXECUTE FUNCTION billing.invoice_line_immutable();

        -- Spread over a few rows per (organization, metric, month) so that concurrent events do
        -- not queue on one row's lock; a read sums the shards.
        CREATE TABLE billing.usage_counters (
          organization_id uuid NOT NULL,
          metric text NOT NULL CHECK (metric IN ('donations', 'donors', 'members', 'emails', 'ai_tokens')),
          period date NOT NULL,
          shard smallint NOT NULL DEFAULT 0 CHECK (shard BETWEEN 0 AND 15),
          quantity bigint NOT NULL DEFAULT 0,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (organization_id, period, metric, shard)
        );

        CREATE TABLE billing.gateway_configs (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          gateway text NOT NULL CHECK (gateway IN ('stripe')),
          nickname text NOT NULL DEFAULT '',
          credentials text NOT NULL,
          webhook_secret text NOT NULL,
          secret_key_hint text NOT NULL,
          test_mode boolean NOT NULL,
          active boolean NOT NULL DEFAULT true,
          created_by text NOT NULL DEFAULT '',
          create_request_id text,
          version integer NOT NULL DEFAULT 1,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          deleted_at timestamptz
        );
        CREATE UNIQUE INDEX gateway_configs_one_active ON billing.gateway_configs (organization_id, gateway)
          WHERE active AND deleted_at IS NULL;
        CREATE UNIQUE INDEX gateway_configs_request ON billing.gateway_configs (organization_id, create_request_id)
          WHERE create_request_id IS NOT NULL;

        -- Every verified gateway event, raw, once: a replayed event id changes nothing.
        CREATE TABLE billing.webhook_events (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          config_id uuid NOT NULL REFERENCES billing.gateway_configs (id),
          gateway text NOT NULL,
          event_id text NOT NULL,
          event_type text NOT NULL,
          payment_id text,
          payload jsonb NOT NULL,
          status text NOT NULL CHECK (status IN ('processed', 'ignored', 'waiting')),
          processed_at timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, gateway, event_id)
        );
        CREATE INDEX webhook_events_waiting ON billing.webhook_events (organization_id, gateway, payment_id)
          WHERE status = 'waiting';

        -- Donors' gifts paid through the organization's gateway (not the platform's revenue).
        CREATE TABLE billing.payments (
          organization_id uuid NOT NULL,
          gateway text NOT NULL,
          payment_id text NOT NULL,
          amount numeric(12,2) NOT NULL CHECK (amount > 0),
          currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
          refunded_amount numeric(12,2) NOT NULL DEFAULT 0,
          donor_email text,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (organization_id, gateway, payment_id),
          CHECK (refunded_amount <= amount)
        );

        CREATE TABLE billing.refunds (
          organization_id uuid NOT NULL,
          gateway text NOT NULL,
          refund_id text NOT NULL,
          payment_id text NOT NULL,
          amount numeric(12,2) NOT NULL CHECK (amount > 0),
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (organization_id, gateway, refund_id)
        );

        INSERT INTO billing.plans (id, code, version, name, currency, monthly_price, yearly_price, trial_days,
                                   tax_rate, entitlements, created_by) VALUES
          ('00000000-0000-4000-8000-000000000001', 'starter', 1, 'Starter', 'USD', 29.00, 290.00, 14, 0,
           '{"seats": 5, "donors": 10000, "ai_tokens_per_month": 100000, "emails_per_month": 2000,
             "storage_gb": 5, "agents": 1}', 'migration'),
          ('00000000-0000-4000-8000-000000000002', 'growth', 1, 'Growth', 'USD', 99.00, 990.00, 14, 0,
           '{"seats": 20, "donors": 100000, "ai_tokens_per_month": 1000000, "emails_per_month": 20000,
             "storage_gb": 50, "agents": 5}', 'migration'),
          ('00000000-0000-4000-8000-000000000003', 'enterprise', 1, 'Enterprise', 'USD', 499.00, 4990.00, 30, 0,
           '{"seats": -1, "donors": -1, "ai_tokens_per_month": -1, "emails_per_month": -1,
             "storage_gb": -1, "agents": -1}', 'migration');
        """,
    )
    # refunds has an organization_id too: RLS like every tenant table
    for table in [*TENANT_TABLES, "billing.refunds"]:
        tenant_table(op, table)
    outbox_tables(op, "billing")


def downgrade() -> None:
    raise NotImplementedError("billing's first revision is not reversible")
