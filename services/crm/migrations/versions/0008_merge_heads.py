"""Join the branches written side by side (todos; donor lists) so crm's history has one head.

Revision ID: 0008
"""

revision = "0008"
down_revision = ("0005", "0006")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
