"""Join the two branches written side by side (journeys and projects; search and merge)
so crm's history has one head again.

Revision ID: 0004
"""

revision = "0004"
down_revision = ("0002", "0003")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
