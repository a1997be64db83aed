"""Folder, document, access and signature rules.

Access to one document (on top of the tenant and the method's permission):
- a document manager (crm.documents.manage) and the document's owner may do everything;
- a grant in force (not expired) to the caller, or to the caller's role, gives its type; EDIT,
  DELETE and SHARE each include VIEW;
- TEAM and CLIENT visibility let every member VIEW;
- a client (through a signed link) may VIEW a CLIENT document of its own, or one it holds a
  VIEW grant on.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chassis.errors import Violations

VIEW, EDIT, DELETE, SHARE = "view", "edit", "delete", "share"
PERMISSION_TYPES = (VIEW, EDIT, DELETE, SHARE)
PRIVATE, TEAM, CLIENT = "private", "team", "client"
VISIBILITIES = (PRIVATE, TEAM, CLIENT)
NONE, PENDING, SIGNED = "none", "pending", "signed"

MAX_FOLDER_NAME = 200
MAX_NAME = 255
MAX_TYPE = 100
MAX_DESCRIPTION = 20_000
MAX_TAGS = 50
MAX_TAG = 50
MAX_METADATA_BYTES = 16 * 1024
MAX_CHUNK = 1024 * 1024
MAX_INTENT = 1000
MAX_SIGNERS = 20
MAX_ROLE = 100
MIN_LINK_SECONDS = 60
DEFAULT_LINK_SECONDS = 7 * 24 * 3600
SNIFF_BYTES = 8192

DOCUMENT_PATHS = ("name", "folder_id", "client_id", "document_type", "tags", "visibility", "description", "metadata")
FOLDER_PATHS = ("name", "parent_id")


@dataclass(frozen=True)
class Caller:
    """Who asks: a member (user id, role, whether they manage documents) or a client through a
    signed link (client_id only)."""

    user_id: uuid.UUID | None = None
    role: str = ""
    manages: bool = False
    client_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Grant:
    user_id: uuid.UUID | None
    role: str | None
    client_id: uuid.UUID | None
    permission_type: str
    expires_at: datetime | None


def _grants(permission_type: str, wanted: str) -> bool:
    return permission_type == wanted or wanted == VIEW


def allowed(action: str, *, caller: Caller, owner_id: uuid.UUID | None, visibility: str,
            client_id: uuid.UUID | None, grants: list[Grant], now: datetime) -> bool:
    """Whether `caller` may do `action` (view, edit, delete, share) on the document."""
    live = [g for g in grants if g.expires_at is None or g.expires_at > now]
    if caller.client_id is not None and caller.user_id is None:
        if action != VIEW:
            return False
        if visibility == CLIENT and client_id == caller.client_id:
            return True
        return any(g.client_id == caller.client_id and _grants(g.permission_type, VIEW) for g in live)
    if caller.manages or (owner_id is not None and owner_id == caller.user_id):
        return True
    if action == VIEW and visibility in (TEAM, CLIENT):
        return True
    return any(_grants(g.permission_type, action) and (
        (g.user_id is not None and g.user_id == caller.user_id) or (g.role is not None and g.role == caller.role))
        for g in live)


def folder_name(value: str, path: str, v: Violations) -> str:
    name = " ".join((value or "").split())
    if not name:
        v.add(path, "is required")
    elif len(name) > MAX_FOLDER_NAME:
        v.add(path, f"must be at most {MAX_FOLDER_NAME} characters")
    elif "/" in name:
        v.add(path, "must not contain '/'")
    return name


def filename(value: str, path: str, v: Violations) -> str:
    name = (value or "").strip().replace("\\", "/").rsplit("/", 1)[-1]
    if not name:
        v.add(path, "is required")
    elif len(name) > MAX_NAME:
        v.add(path, f"must be at most {MAX_NAME} characters")
    elif any(ord(ch) < 32 for ch in name):
        v.add(path, "must not contain control characters")
    return name


def _id(value: str, path: str, v: Violations) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        v.add(path, "is not a valid id")
        return None


def normalize_document(raw: dict[str, Any], prefix: str, v: Violations) -> dict[str, Any]:
    p = f"{prefix}."
    for path, description in raw.get("problems", {}).items():
        v.add(path, description)
    out: dict[str, Any] = {}
    name = " ".join((raw.get("name") or "").split())
    if not name:
        v.add(f"{p}name", "is required")
    elif len(name) > MAX_NAME:
        v.add(f"{p}name", f"must be at most {MAX_NAME} characters")
    out["name"] = name
    out["folder_id"] = _id(raw.get("folder_id"), f"{p}folder_id", v)
    out["client_id"] = _id(raw.get("client_id"), f"{p}client_id", v)
    dtype = (raw.get("document_type") or "").strip() or None
    if dtype and (len(dtype) > MAX_TYPE or not re.match(r"^[\w.\- ]+$", dtype)):
        v.add(f"{p}document_type", f"must be 1-{MAX_TYPE} letters, digits, '_', '-', '.' or spaces")
    out["document_type"] = dtype
    tags: list[str] = []
    for i, tag in enumerate(raw.get("tags") or []):
        tag = tag.strip()
        if not tag or len(tag) > MAX_TAG:
            v.add(f"{p}tags[{i}]", f"must be 1-{MAX_TAG} characters")
        elif tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        v.add(f"{p}tags", f"at most {MAX_TAGS} tags")
    out["tags"] = tags
    out["visibility"] = raw.get("visibility") or PRIVATE
    if out["visibility"] == CLIENT and not out["client_id"]:
        v.add(f"{p}visibility", "a CLIENT document needs client_id")
    description = (raw.get("description") or "").strip() or None
    if description and len(description) > MAX_DESCRIPTION:
        v.add(f"{p}description", f"must be at most {MAX_DESCRIPTION} characters")
    out["description"] = description
    metadata = dict(raw.get("metadata") or {})
    if len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode()) > MAX_METADATA_BYTES:
        v.add(f"{p}metadata", f"must be at most {MAX_METADATA_BYTES} bytes as JSON")
    out["metadata"] = metadata
    return out


def permission_grantee(user_id: str, role: str, client_id: str, v: Violations) -> dict[str, Any]:
    given = [k for k, val in (("user_id", user_id), ("role", role), ("client_id", client_id)) if val.strip()]
    if len(given) != 1:
        v.add("permission.user_id", "set exactly one of user_id, role and client_id")
        return {}
    out = {"user_id": None, "role": None, "client_id": None}
    if given[0] == "role":
        role = role.strip()
        if len(role) > MAX_ROLE:
            v.add("permission.role", f"must be at most {MAX_ROLE} characters")
        out["role"] = role
    else:
        out[given[0]] = _id(user_id or client_id, f"permission.{given[0]}", v)
    return out


def link_seconds(ttl: int, maximum: int, path: str, v: Violations) -> int:
    ttl = ttl or min(DEFAULT_LINK_SECONDS, maximum)
    if ttl < MIN_LINK_SECONDS or ttl > maximum:
        v.add(path, f"must be between {MIN_LINK_SECONDS} and {maximum} seconds")
    return ttl


def intent(value: str, path: str, v: Violations) -> str:
    value = " ".join((value or "").split())
    if not value:
        v.add(path, "is required: the signer's stated intent")
    elif len(value) > MAX_INTENT:
        v.add(path, f"must be at most {MAX_INTENT} characters")
    return value


def signature_status(statuses: list[str]) -> str:
    """A version's status from its signatures' statuses."""
    if not statuses:
        return NONE
    return SIGNED if all(s == SIGNED for s in statuses) else PENDING


def detect_mime(head: bytes) -> str:
    """The MIME type of a file from its first bytes (their magic numbers, never the client's
    word): filetype's signatures; else UTF-8 text is text/plain; else octet-stream."""
    import filetype

    kind = filetype.guess(head) if head else None
    if kind is not None:
        return kind.mime
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    try:
        head[: len(head) - 4].decode("utf-8") if len(head) >= SNIFF_BYTES else head.decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain" if head else "application/octet-stream"
