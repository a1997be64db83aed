"""crm: folders, documents with versions, document permissions and signatures (seed 002).

- folders: a tree per organization. A folder's name is unique among its live siblings. Moves
  run in one transaction holding the organization's folder lock (an advisory lock), which
  checks that the new parent is not the folder or one of its descendants: no cycles.
- document_blobs: the stored bytes, once per organization and SHA-256 (two uploads of the same
  bytes store once); storage_key names the object in the object store.
- documents: the document (name, type, tags, visibility, client, description, metadata as JSONB
  with a GIN index). document_versions: its history; exactly one current version (a partial
  unique index); a restore makes a new version of an older one's bytes.
- document_permissions: view, edit, delete or share granted to one user, one role or one
  client, optionally until expires_at.
- document_signatures: a signer (a contact or a member) asked to sign one version; signing
  records who, when, from where, the intent and the version's SHA-256 at signing. A version
  with a signature can no longer change or go (a trigger): it is only superseded by a newer one.

Revision ID: 0019
"""

from alembic import op

from chassis.migrate import script, tenant_table

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    script(
        op,
        """
        CREATE TABLE crm.folders (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          parent_id uuid,
          name text NOT NULL CHECK (btrim(name) <> '' AND position('/' in name) = 0),
          created_by uuid,
          create_request_id text,
          version integer NOT NULL DEFAULT 1,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          deleted_at timestamptz,
          UNIQUE (organization_id, id),
          FOREIGN KEY (organization_id, parent_id) REFERENCES crm.folders (organization_id, id),
          CHECK (parent_id IS DISTINCT FROM id)
        );
        CREATE UNIQUE INDEX folders_sibling_name ON crm.folders
          (organization_id, COALESCE(parent_id, '00000000-0000-0000-0000-000000000000'::uuid), lower(name))
          WHERE deleted_at IS NULL;
        CREATE UNIQUE INDEX folders_create_request ON crm.folders (organization_id, create_request_id)
          WHERE create_request_id IS NOT NULL;
        CREATE INDEX folders_parent ON crm.folders (organization_id, parent_id, lower(name), id)
          WHERE deleted_at IS NULL;

        -- A folder's path from the root (names joined with '/'); runs as the caller, under RLS.
        CREATE FUNCTION crm.folder_path(org uuid, folder uuid) RETURNS text LANGUAGE sql STABLE AS $$
          WITH RECURSIVE up(id, parent_id, name, depth) AS (
            SELECT id, parent_id, name, 0 FROM crm.folders WHERE organization_id = org AND id = folder
            UNION ALL
            SELECT f.id, f.parent_id, f.name, up.depth + 1 FROM crm.folders f JOIN up ON f.id = up.parent_id
            WHERE f.organization_id = org AND up.depth < 1000)
          SELECT string_agg(name, '/' ORDER BY depth DESC) FROM up
        $$;

        CREATE TABLE crm.document_blobs (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
          size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
          mime_type text NOT NULL,
          storage_key text NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, id),
          UNIQUE (organization_id, sha256)
        );

        CREATE TABLE crm.documents (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          folder_id uuid,
          client_id uuid,
          name text NOT NULL CHECK (btrim(name) <> ''),
          document_type text,
          tags text[] NOT NULL DEFAULT ARRAY[]::text[],
          visibility text NOT NULL DEFAULT 'private' CHECK (visibility IN ('private', 'team', 'client')),
          description text,
          metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
          current_version integer NOT NULL DEFAULT 1,
          owner_id uuid,
          create_request_id text,
          version integer NOT NULL DEFAULT 1,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          deleted_at timestamptz,
          UNIQUE (organization_id, id),
          FOREIGN KEY (organization_id, folder_id) REFERENCES crm.folders (organization_id, id),
          FOREIGN KEY (organization_id, client_id) REFERENCES crm.clients (organization_id, id)
        );
        CREATE UNIQUE INDEX documents_create_request ON crm.documents (organization_id, create_request_id)
          WHERE create_request_id IS NOT NULL;
        CREATE INDEX documents_list_order ON crm.documents (organization_id, created_at DESC, id DESC)
          WHERE deleted_at IS NULL;
        CREATE INDEX documents_folder ON crm.documents (organization_id, folder_id) WHERE deleted_at IS NULL;
        CREATE INDEX documents_client ON crm.documents (organization_id, client_id) WHERE deleted_at IS NULL;
        CREATE INDEX documents_tags ON crm.documents USING gin (tags);
        CREATE INDEX documents_metadata_gin_idx ON crm.documents USING gin (metadata jsonb_path_ops);

        CREATE TABLE crm.document_versions (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          document_id uuid NOT NULL,
          number integer NOT NULL CHECK (number >= 1),
          blob_id uuid NOT NULL,
          filename text NOT NULL,
          size_bytes bigint NOT NULL,
          mime_type text NOT NULL,
          sha256 text NOT NULL,
          is_current boolean NOT NULL DEFAULT true,
          restored_from integer,
          uploaded_by uuid,
          created_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, id),
          UNIQUE (document_id, number),
          FOREIGN KEY (organization_id, document_id) REFERENCES crm.documents (organization_id, id),
          FOREIGN KEY (organization_id, blob_id) REFERENCES crm.document_blobs (organization_id, id)
        );
        CREATE UNIQUE INDEX document_versions_one_current ON crm.document_versions (document_id) WHERE is_current;

        CREATE TABLE crm.document_permissions (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          document_id uuid NOT NULL,
          user_id uuid,
          role text,
          client_id uuid,
          permission_type text NOT NULL CHECK (permission_type IN ('view', 'edit', 'delete', 'share')),
          granted_by uuid,
          expires_at timestamptz,
          created_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, id),
          FOREIGN KEY (organization_id, document_id) REFERENCES crm.documents (organization_id, id),
          FOREIGN KEY (organization_id, client_id) REFERENCES crm.clients (organization_id, id),
          CONSTRAINT document_permissions_one_grantee
            CHECK (num_nonnulls(user_id, role, client_id) = 1)
        );
        CREATE INDEX document_permissions_document ON crm.document_permissions (organization_id, document_id);

        CREATE TABLE crm.document_signatures (
          id uuid PRIMARY KEY,
          organization_id uuid NOT NULL,
          document_id uuid NOT NULL,
          version_number integer NOT NULL,
          contact_id uuid,
          user_id uuid,
          signer_name text NOT NULL,
          signer_email text,
          status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'signed')),
          requested_by uuid,
          signed_at timestamptz,
          signed_by_user uuid,
          ip_address text,
          user_agent text,
          intent text,
          document_sha256 text,
          created_at timestamptz NOT NULL DEFAULT now(),
          UNIQUE (organization_id, id),
          FOREIGN KEY (organization_id, document_id) REFERENCES crm.documents (organization_id, id),
          FOREIGN KEY (organization_id, contact_id) REFERENCES crm.contacts (organization_id, id),
          FOREIGN KEY (document_id, version_number) REFERENCES crm.document_versions (document_id, number),
          CONSTRAINT document_signatures_one_signer CHECK (num_nonnulls(contact_id, user_id) = 1),
          CONSTRAINT document_signatures_signed
            CHECK ((status = 'signed') = (signed_at IS NOT NULL AND intent IS NOT NULL AND document_sha256 IS NOT NULL))
        );
        CREATE INDEX document_signatures_document ON crm.document_signatures (organization_id, document_id);
        CREATE UNIQUE INDEX document_signatures_once ON crm.document_signatures
          (document_id, version_number, COALESCE(contact_id, user_id));

        -- A signed version is a record: its bytes, number and document never change and it is
        -- never deleted; only whether it is current moves (a newer version supersedes it).
        CREATE FUNCTION crm.signed_version_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF EXISTS (SELECT 1 FROM crm.document_signatures s
                     WHERE s.document_id = OLD.document_id AND s.version_number = OLD.number
                       AND s.status = 'signed') THEN
            IF TG_OP = 'DELETE' OR (NEW.blob_id, NEW.sha256, NEW.size_bytes, NEW.number, NEW.document_id,
                                    NEW.filename)
                IS DISTINCT FROM (OLD.blob_id, OLD.sha256, OLD.size_bytes, OLD.number, OLD.document_id,
                                  OLD.filename) THEN
              RAISE EXCEPTION 'version % of document % is signed: it can only be superseded',
                OLD.number, OLD.document_id USING ERRCODE = 'check_violation',
                CONSTRAINT = 'document_versions_signed_final';
            END IF;
          END IF;
          RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
        END $$;
        CREATE TRIGGER document_versions_signed_final BEFORE UPDATE OR DELETE ON crm.document_versions
          FOR EACH ROW EXECUTE FUNCTION crm.signed_version_is_final();
        """,
    )
    for table in ("folders", "document_blobs", "documents", "document_versions", "document_permissions",
                  "document_signatures"):
        tenant_table(op, f"crm.{table}")


def downgrade() -> None:
    script(
        op,
        """
        DROP TABLE crm.document_signatures; DROP TABLE crm.document_permissions;
        DROP TABLE crm.document_versions; DROP FUNCTION crm.signed_version_is_final();
        DROP TABLE crm.documents; DROP TABLE crm.document_blobs; DROP FUNCTION crm.folder_path(uuid, uuid);
        DROP TABLE crm.folders;
        """,
    )
