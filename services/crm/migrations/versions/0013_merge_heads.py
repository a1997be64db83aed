"""Join the branches written side by side (donation history; import index; salutations;
member replica) so crm's history has one head.

Revision ID: 0013
"""

revision = "0013"
down_revision = ("0009", "0010", "0011", "0012")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
