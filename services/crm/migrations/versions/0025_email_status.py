"""crm: an email status on the donor (comms' bounces, complaints and unsubscribes from
everything), and when it last changed. A changed email address starts again at 'ok' (a
trigger: every path that writes the address gets it).

Revision ID: 0025
"""

from alembic import op

from chassis.migrate import script

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(
        op,
        """
        ALTER TABLE crm.donors
          ADD COLUMN email_status text NOT NULL DEFAULT 'ok'
            CHECK (email_status IN ('ok', 'bounced', 'complained', 'unsubscribed')),
          ADD COLUMN email_status_at timestamptz;

        CREATE FUNCTION crm.donor_email_status_reset() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.email IS DISTINCT FROM OLD.email THEN
            NEW.email_status := 'ok';
            NEW.email_status_at := NULL;
          END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER donors_email_status_reset BEFORE UPDATE OF email ON crm.donors
          FOR EACH ROW EXECUTE FUNCTION crm.donor_email_status_reset();
        """,
    )


def downgrade() -> None:
    script(op, """
        DROP TRIGGER donors_email_status_reset ON crm.donors;
        DROP FUNCTION crm.donor_email_status_reset();
        ALTER TABLE crm.donors DROP COLUMN email_status, DROP COLUMN email_status_at;
    """)
