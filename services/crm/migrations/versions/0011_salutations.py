"""crm: a donor's own formal and informal salutation, when it differs from the derived one.

NULL (the usual case) means the salutation is derived from the names when read
(services/crm/domain/salutations.py), so it follows every name change.

Revision ID: 0011
"""

from alembic import op

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE crm.donors ADD COLUMN formal_salutation text, ADD COLUMN informal_salutation text")


def downgrade() -> None:
    op.execute("ALTER TABLE crm.donors DROP COLUMN formal_salutation, DROP COLUMN informal_salutation")
