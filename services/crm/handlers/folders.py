"""Folders: a tree per organization (create, read, list, rename and move without cycles, delete
when empty). Every change holds the organization's folder lock."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from chassis.db import Database
from chassis.errors import (
    FailedPrecondition,
    InvalidArgument,
    Violations,
)
from chassis.resource import Keyset, check_request_id, current, expand_mask, found, parse_id, parse_optional_id
from services.crm.domain import documents as rules
from services.crm.handlers.clients import caller_user
from services.crm.store import documents as store

if TYPE_CHECKING:  # the interface only: the store itself is injected
    pass


async def create_folder(db: Database, org: uuid.UUID, name: str, parent_id: str, request_id: str) -> dict:
    v = Violations()
    check_request_id(request_id, v)
    name = rules.folder_name(name, "folder.name", v)
    parent = parse_optional_id(parent_id, "folder.parent_id", v)
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        if request_id and (earlier := await store.folder_by_request_id(uow.conn, org, request_id)):
            return found(await store.get_folder(uow.conn, org, earlier), "folder", str(earlier))
        await store.lock_tree(uow.conn, org)
        if parent is not None and not await store.folder_is_live(uow.conn, org, parent):
            raise InvalidArgument.field("folder.parent_id", "no such folder")
        fid = uuid.uuid4()
        if not await store.insert_folder(uow.conn, org, fid, parent, name, caller_user(), request_id or None):
            fid = await store.folder_by_request_id(uow.conn, org, request_id)
        row = await store.get_folder(uow.conn, org, fid)
        uow.audit("crm.folder.create", "folder", str(fid), after={"name": name, "parent_id": parent})
        return row


async def get_folder(db: Database, org: uuid.UUID, folder_id: str) -> dict:
    fid = parse_id(folder_id, "id")
    async with db.unit_of_work(org) as uow:
        return found(await store.get_folder(uow.conn, org, fid), "folder", folder_id)


async def list_folders(db: Database, org: uuid.UUID, parent_id: str, page_size: int, page_token: str):
    parent = parse_optional_id(parent_id, "parent_id")
    page = Keyset.of(page_size, page_token, ("folders", str(parent or "")), (str, uuid.UUID))
    async with db.unit_of_work(org) as uow:
        rows = await store.page_folders(uow.conn, org, parent, page.after, page.limit)
    return page.cut(rows, lambda r: (r["name"].lower(), r["id"]))


async def update_folder(db: Database, org: uuid.UUID, folder_id: str, etag: str, name: str, parent_id: str,
                        mask: list[str]) -> dict:
    """Rename and move, in one transaction holding the organization's folder lock: the cycle
    check and the move cannot interleave with another move."""
    fid = parse_id(folder_id, "folder.id")
    v = Violations()
    paths = expand_mask(mask, rules.FOLDER_PATHS, "update_mask", v)
    new_name = rules.folder_name(name, "folder.name", v) if "name" in paths else None
    new_parent = parse_optional_id(parent_id, "folder.parent_id", v) if "parent_id" in paths else None
    v.raise_if_any()
    async with db.unit_of_work(org) as uow:
        await store.lock_tree(uow.conn, org)
        row = current(await store.get_folder(uow.conn, org, fid, for_update=True), "folder", folder_id, etag,
                      "folder.etag")
        name_after = new_name if new_name is not None else row["name"]
        parent_after = row["parent_id"]
        if "parent_id" in paths:
            if new_parent is not None:
                if not await store.folder_is_live(uow.conn, org, new_parent):
                    raise InvalidArgument.field("folder.parent_id", "no such folder")
                if await store.is_within(uow.conn, org, new_parent, fid):
                    raise InvalidArgument.field("folder.parent_id",
                                                "cannot move a folder into itself or one of its descendants")
            parent_after = new_parent
        await store.update_folder(uow.conn, org, fid, name_after, parent_after)
        updated = await store.get_folder(uow.conn, org, fid)
        uow.audit_change("crm.folder.update", "folder", str(fid),
                         {"name": row["name"], "parent_id": row["parent_id"]},
                         {"name": updated["name"], "parent_id": updated["parent_id"]})
        return updated


async def delete_folder(db: Database, org: uuid.UUID, folder_id: str, etag: str) -> None:
    fid = parse_id(folder_id, "id")
    async with db.unit_of_work(org) as uow:
        await store.lock_tree(uow.conn, org)
        row = current(await store.get_folder(uow.conn, org, fid, for_update=True), "folder", folder_id, etag, "etag")
        if not await store.folder_is_empty(uow.conn, org, fid):
            raise FailedPrecondition(f"folder {folder_id} is not empty", reason="FOLDER_NOT_EMPTY")
        await store.delete_folder(uow.conn, org, fid)
        uow.audit("crm.folder.delete", "folder", str(fid), before={"name": row["name"], "parent_id": row["parent_id"]})
