"""crm: crm.refresh_donor_statistics(), ANALYZE of crm.donors for the service's role.

A bulk import grows crm.donors by up to a million rows in minutes, faster than autovacuum
re-analyzes it; with statistics that say the table is nearly empty the planner picks nested
loops that read the whole organization for every donor looked up (the duplicate refresh of
an import's batches took minutes). ANALYZE needs the table's owner, so this function runs as
the owner (SECURITY DEFINER, fixed search_path) and does nothing else; only crm's own role
may call it.

Revision ID: 0015
"""

from alembic import op

from chassis.migrate import service_role

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION crm.refresh_donor_statistics() RETURNS void
          LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
          AS $$ BEGIN ANALYZE crm.donors; END $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION crm.refresh_donor_statistics() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION crm.refresh_donor_statistics() TO {service_role('crm')}")


def downgrade() -> None:
    op.execute("DROP FUNCTION crm.refresh_donor_statistics()")
