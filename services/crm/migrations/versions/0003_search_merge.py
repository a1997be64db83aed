"""crm: donor search (trigram), duplicate detection, merge.

- crm.immutable_unaccent(text): public.unaccent with its dictionary named, declared IMMUTABLE
  so generated columns and indexes may use it (unaccent itself is only STABLE, because its
  dictionary could change; ours is fixed).
- crm.donors.search_text: names, spouse names and email, lower-cased and unaccented;
  name_text: first and last name alike (duplicate detection); phone_digits: the phone's digits.
  All three are generated columns, GIN trigram indexed over live donors.
- crm.donors.merged_into_id: set when the donor was merged into another (it is then
  soft-deleted too); reads of a merged id resolve to the survivor.

Revision ID: 0003
"""

from alembic import op

from chassis.migrate import script

revision = "0003"
# Meant to follow 0002 (journeys, projects); chained to 0001 until that migration lands.
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(
        op,
        """
        CREATE FUNCTION crm.immutable_unaccent(text) RETURNS text
          LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
          RETURN public.unaccent('public.unaccent'::regdictionary, $1);

        ALTER TABLE crm.donors
          ADD COLUMN search_text text GENERATED ALWAYS AS (crm.immutable_unaccent(lower(
            first_name || ' ' || last_name || ' ' || coalesce(spouse_first_name, '') || ' '
            || coalesce(spouse_last_name, '') || ' ' || coalesce(email, '') || ' ' || coalesce(spouse_email, ''))))
            STORED,
          ADD COLUMN name_text text GENERATED ALWAYS AS (
            crm.immutable_unaccent(lower(btrim(first_name || ' ' || last_name)))) STORED,
          ADD COLUMN phone_digits text GENERATED ALWAYS AS (regexp_replace(coalesce(phone, ''), '[^0-9]', '', 'g'))
            STORED,
          ADD COLUMN merged_into_id uuid,
          ADD CONSTRAINT donors_merged_into FOREIGN KEY (organization_id, merged_into_id)
            REFERENCES crm.donors (organization_id, id),
          ADD CONSTRAINT merged_donors_are_deleted CHECK (merged_into_id IS NULL OR deleted_at IS NOT NULL),
          ADD CONSTRAINT not_merged_into_itself CHECK (merged_into_id IS DISTINCT FROM id);

        CREATE INDEX donors_search_trgm ON crm.donors USING gin (search_text public.gin_trgm_ops)
          WHERE deleted_at IS NULL;
        CREATE INDEX donors_name_trgm ON crm.donors USING gin (name_text public.gin_trgm_ops)
          WHERE deleted_at IS NULL;
        CREATE INDEX donors_phone_digits_trgm ON crm.donors USING gin (phone_digits public.gin_trgm_ops)
          WHERE deleted_at IS NULL;
        CREATE INDEX donors_phone ON crm.donors (organization_id, phone) WHERE deleted_at IS NULL AND phone IS NOT NULL;
        CREATE INDEX donors_merged_into ON crm.donors (organization_id, merged_into_id)
          WHERE merged_into_id IS NOT NULL;
        """,
    )


def downgrade() -> None:
    script(
        op,
        """
        DROP INDEX crm.donors_phone;
        ALTER TABLE crm.donors DROP CONSTRAINT not_merged_into_itself, DROP CONSTRAINT merged_donors_are_deleted,
          DROP CONSTRAINT donors_merged_into, DROP COLUMN merged_into_id, DROP COLUMN phone_digits,
          DROP COLUMN name_text, DROP COLUMN search_text;
        DROP FUNCTION crm.immutable_unaccent(text);
        """,
    )
