"""crm: donor search, tenant-scoped by construction, with no LEAKPROOF marking.

Under row-level security the planner lets an index serve a condition only if its operator is
leakproof; pg_trgm's `<%` and LIKE are not, and marking them so needs a superuser on every
migrate (managed PostgreSQL refuses it). So the search no longer runs under the policy:

- crm.search_donor_ids(q, digits) is SECURITY DEFINER, owned by givance_owner, and filters by
  the caller's tenant itself (app.tenant_id, set by the unit of work; no argument names an
  organization, and no tenant means no rows). It answers only (id, score); the caller reads
  the donors themselves by id, under row-level security as always.
- givance_owner reads crm.donors through a SELECT policy of its own (USING true): with no
  security qualifier on the table the planner uses the trigram indexes. givance_owner is
  NOLOGIN, no service role is a member of it, and it could turn FORCE off anyway as owner.
- The trigram indexes lead with organization_id (btree_gin): a search reads its own
  organization's postings, never every tenant's.

Revision ID: 0016
"""

from alembic import op

from chassis.migrate import OWNER_ROLE, script, service_role

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# The word-similarity threshold is the caller's (set_config of pg_trgm.word_similarity_threshold
# in its transaction); the phone condition is present only for a phone query (digits not NULL).
_FUNCTION = """
CREATE FUNCTION crm.search_donor_ids(q text, digits text)
  RETURNS TABLE (id uuid, score double precision)
  LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
  AS $$
  DECLARE
    org uuid := NULLIF(current_setting('app.tenant_id', true), '')::uuid;
    nq text := crm.immutable_unaccent(lower(q));
  BEGIN
    IF digits IS NULL THEN
      RETURN QUERY SELECT d.id, CAST(public.word_similarity(nq, d.search_text) AS double precision)
        FROM crm.donors d
        WHERE d.organization_id = org AND d.deleted_at IS NULL AND nq OPERATOR(public.<%) d.search_text;
    ELSE
      RETURN QUERY SELECT d.id, CAST(GREATEST(public.word_similarity(nq, d.search_text),
          CASE WHEN d.phone_digits LIKE digits THEN 1 ELSE 0 END) AS double precision)
        FROM crm.donors d
        WHERE d.organization_id = org AND d.deleted_at IS NULL
          AND (nq OPERATOR(public.<%) d.search_text OR d.phone_digits LIKE digits);
    END IF;
  END $$
"""


def upgrade() -> None:
    script(
        op,
        f"""
        CREATE INDEX donors_org_search_trgm ON crm.donors
          USING gin (organization_id, search_text public.gin_trgm_ops) WHERE deleted_at IS NULL;
        CREATE INDEX donors_org_phone_digits_trgm ON crm.donors
          USING gin (organization_id, phone_digits public.gin_trgm_ops) WHERE deleted_at IS NULL;
        DROP INDEX crm.donors_search_trgm;
        DROP INDEX crm.donors_phone_digits_trgm;
        CREATE POLICY owner_searches ON crm.donors FOR SELECT TO {OWNER_ROLE} USING (true);
        {_FUNCTION};
        REVOKE ALL ON FUNCTION crm.search_donor_ids(text, text) FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION crm.search_donor_ids(text, text) TO {service_role('crm')};
        """,
    )


def downgrade() -> None:
    script(
        op,
        """
        DROP FUNCTION crm.search_donor_ids(text, text);
        DROP POLICY owner_searches ON crm.donors;
        CREATE INDEX donors_search_trgm ON crm.donors USING gin (search_text public.gin_trgm_ops)
          WHERE deleted_at IS NULL;
        CREATE INDEX donors_phone_digits_trgm ON crm.donors USING gin (phone_digits public.gin_trgm_ops)
          WHERE deleted_at IS NULL;
        DROP INDEX crm.donors_org_phone_digits_trgm;
        DROP INDEX crm.donors_org_search_trgm;
        """,
    )
