"""Sessions, service accounts, audit trail: the indexes their queries use.

- a user's live sessions: the family's unused, unrevoked refresh token;
- an organization's service accounts that are not deleted;
- the audit trail by actor, newest first (on every partition, present and future).

Revision ID: 0007
"""

from alembic import op

from chassis.migrate import script

revision = "0007"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(op, """
        CREATE INDEX refresh_tokens_live ON identity.refresh_tokens (organization_id, user_id, created_at DESC)
          WHERE used_at IS NULL AND revoked_at IS NULL;
        CREATE INDEX service_accounts_org ON identity.service_accounts (organization_id, created_at)
          WHERE deleted_at IS NULL;
        CREATE INDEX activity_logs_actor ON identity.activity_logs
          (organization_id, actor_id, occurred_at DESC, id DESC);
    """)


def downgrade() -> None:
    script(op, """
        DROP INDEX identity.activity_logs_actor;
        DROP INDEX identity.service_accounts_org;
        DROP INDEX identity.refresh_tokens_live;
    """)
