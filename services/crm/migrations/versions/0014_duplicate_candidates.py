"""crm: precomputed duplicate candidates (the whole-organization FindDuplicateDonors).

- crm.duplicate_candidates: one row per pair of live donors that are probably one
  (donor_id < duplicate_id), with its reasons and score, kept by the service: single-donor
  writes (create, update, delete, restore, merge) refresh their donor's pairs in the same
  transaction; an import's batches are refreshed by the crm.duplicate-candidates consumer
  of crm.donors.imported. Keyset pages on (score DESC, donor_id, duplicate_id).
- Candidate generation is index-driven (blocked) instead of comparing every pair of a city.
  crm.donors gets three stored blocking keys (generated columns) and partial indexes on them:
  email_key = lower(email) (same email; replaces donors_email, an index on lower(email) that
  row-level security kept the service from using), household_key = normalized zip + lower
  street (similar names in one household), city_block_key = country + unaccented lower city
  + first two letters of the unaccented last name (similar names in one city are compared
  only within this block, and only between donors who both have no street and zip: a full
  street address is the address; the index holds only such donors). Net: two more indexes on
  crm.donors, one of them small.
- The backfill computes every existing pair in one statement (hash joins on the same keys).
  crm.donors is under FORCE ROW LEVEL SECURITY, so the owner lifts the force for that one
  statement, inside this migration's transaction.

Revision ID: 0014
"""

from alembic import op

from chassis.migrate import script, tenant_table

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# The SQL of services/crm/store/donor_matching.py as of this revision, for every organization
# at once (a migration does not import the service's code: it must replay the same way later).
_BASE = ("FROM crm.donors a JOIN crm.donors b ON b.organization_id = a.organization_id "
         "AND b.deleted_at IS NULL AND a.id < b.id {on} WHERE a.deleted_at IS NULL")
_SIMILAR = "a.name_text <> '' AND b.name_text % a.name_text"
_SAME_STREET = ("lower(b.address_street) = lower(a.address_street) "
                "AND upper(replace(b.address_zip, ' ', '')) = upper(replace(a.address_zip, ' ', ''))")
_SAME_CITY = ("b.address_country = a.address_country "
              "AND crm.immutable_unaccent(lower(b.address_city)) = crm.immutable_unaccent(lower(a.address_city))")
_CITY_ONLY = "a.household_key IS NULL AND b.household_key IS NULL"

BACKFILL = f"""
    INSERT INTO crm.duplicate_candidates (organization_id, donor_id, duplicate_id, same_email, same_phone,
                                          similar_name, score)
    WITH cand AS (
      SELECT a.organization_id AS org, a.id AS a_id, b.id AS b_id
        {_BASE.format(on="AND b.email_key = a.email_key")}
      UNION
      SELECT a.organization_id, a.id, b.id {_BASE.format(on="AND b.phone = a.phone")}
      UNION
      SELECT a.organization_id, a.id, b.id {_BASE.format(on=f"AND b.household_key = a.household_key AND {_SIMILAR}")}
      UNION
      SELECT a.organization_id, a.id, b.id
        {_BASE.format(on=f"AND b.city_block_key = a.city_block_key AND {_CITY_ONLY} AND {_SIMILAR}")}
    ), scored AS (
      SELECT c.org, c.a_id, c.b_id,
        coalesce(lower(a.email) = lower(b.email), false) AS same_email,
        coalesce(a.phone = b.phone, false) AS same_phone,
        CASE WHEN a.name_text <> '' AND (({_SAME_STREET}) OR ({_SAME_CITY} AND {_CITY_ONLY}))
             THEN CAST(similarity(a.name_text, b.name_text) AS double precision) ELSE 0 END AS name_sim
      FROM cand c JOIN crm.donors a ON a.id = c.a_id JOIN crm.donors b ON b.id = c.b_id
    )
    SELECT org, a_id, b_id, same_email, same_phone, name_sim >= 0.5,
      CAST(round(CAST(1 - (1 - CASE WHEN same_email THEN 0.95 ELSE 0 END)
                        * (1 - CASE WHEN same_phone THEN 0.9 ELSE 0 END)
                        * (1 - CASE WHEN name_sim >= 0.5 THEN name_sim ELSE 0 END) AS numeric), 4)
           AS double precision)
    FROM scored
"""


def upgrade() -> None:
    script(
        op,
        """
        CREATE TABLE crm.duplicate_candidates (
          organization_id uuid NOT NULL,
          donor_id uuid NOT NULL,
          duplicate_id uuid NOT NULL,
          same_email boolean NOT NULL,
          same_phone boolean NOT NULL,
          similar_name boolean NOT NULL,
          score double precision NOT NULL,
          computed_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (organization_id, donor_id, duplicate_id),
          CONSTRAINT duplicate_candidates_ordered CHECK (donor_id < duplicate_id)
        );
        CREATE INDEX duplicate_candidates_page ON crm.duplicate_candidates
          (organization_id, score DESC, donor_id, duplicate_id);
        CREATE INDEX duplicate_candidates_duplicate ON crm.duplicate_candidates (organization_id, duplicate_id);

        -- Blocking keys, stored: only an equality of plain columns (a leakproof operator) may be
        -- an index condition under row-level security; lower(), unaccent() on the column may not.
        -- chr(31) (unit separator, which no name or address holds) joins the parts.
        ALTER TABLE crm.donors
          ADD COLUMN email_key text GENERATED ALWAYS AS (lower(email)) STORED,
          ADD COLUMN household_key text GENERATED ALWAYS AS (
            upper(replace(address_zip, ' ', '')) || chr(31) || lower(address_street)) STORED,
          ADD COLUMN city_block_key text GENERATED ALWAYS AS (
            address_country || chr(31) || crm.immutable_unaccent(lower(address_city)) || chr(31)
            || left(crm.immutable_unaccent(lower(btrim(last_name))), 2)) STORED;
        -- donors_email (organization_id, lower(email)) served no query of the service's role
        -- (lower() is not leakproof, so RLS keeps it out of index conditions); it is replaced.
        DROP INDEX crm.donors_email;
        CREATE INDEX donors_email_key ON crm.donors (organization_id, email_key)
          WHERE deleted_at IS NULL AND email_key IS NOT NULL;
        CREATE INDEX donors_household_key ON crm.donors (organization_id, household_key)
          WHERE deleted_at IS NULL AND household_key IS NOT NULL;
        -- Only donors without a full street address are compared by city: a small index.
        CREATE INDEX donors_city_block_key ON crm.donors (organization_id, city_block_key)
          WHERE deleted_at IS NULL AND city_block_key IS NOT NULL AND household_key IS NULL;
        """,
    )
    script(
        op,
        "SET LOCAL pg_trgm.similarity_threshold = 0.5;\n"
        "ALTER TABLE crm.donors NO FORCE ROW LEVEL SECURITY;\n"
        f"{BACKFILL};\n"
        "ALTER TABLE crm.donors FORCE ROW LEVEL SECURITY;\n"
        # Statistics for the new keys and the filled table, so the first pages plan well at once.
        "ANALYZE crm.donors;\n"
        "ANALYZE crm.duplicate_candidates;\n",
    )
    tenant_table(op, "crm.duplicate_candidates")


def downgrade() -> None:
    script(
        op,
        """
        DROP TABLE crm.duplicate_candidates;
        DROP INDEX crm.donors_city_block_key;
        DROP INDEX crm.donors_household_key;
        DROP INDEX crm.donors_email_key;
        ALTER TABLE crm.donors DROP COLUMN city_block_key, DROP COLUMN household_key, DROP COLUMN email_key;
        CREATE INDEX donors_email ON crm.donors (organization_id, lower(email)) WHERE deleted_at IS NULL;
        """,
    )
