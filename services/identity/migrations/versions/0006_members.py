"""A user reads the organizations they are an active member of (ListMyOrganizations,
SwitchOrganization): a SELECT-only policy on organizations through app.user_id.

Revision ID: 0006
"""

from alembic import op

from chassis.migrate import USER_PREDICATE

revision = "0006"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # user_organizations answers the subquery through its own_rows policy (app.user_id).
    op.execute(
        "CREATE POLICY member_read ON identity.organizations FOR SELECT USING (EXISTS ("
        "SELECT 1 FROM identity.user_organizations m WHERE m.organization_id = organizations.id "
        f"AND m.user_id = {USER_PREDICATE} AND m.status = 'active'))"
    )
    op.execute("CREATE INDEX IF NOT EXISTS user_organizations_user ON identity.user_organizations (user_id)")
    op.execute("CREATE INDEX IF NOT EXISTS user_organizations_custom_role "
               "ON identity.user_organizations (organization_id, custom_role_id) WHERE custom_role_id IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS identity.user_organizations_custom_role")
    op.execute("DROP INDEX IF EXISTS identity.user_organizations_user")
    op.execute("DROP POLICY member_read ON identity.organizations")
