"""chassis.sql's statement helpers (what they compose; the stores' tests run them) and the
common text checks of chassis.errors.Violations."""

from __future__ import annotations

import pytest

from chassis.errors import Aborted, InvalidArgument, NotFound, Violations
from chassis.resource import current, found, update_request
from chassis.sql import Where, assignments, json_object


def test_where_adds_given_filters_and_a_keyset_position():
    where = Where("organization_id = :org", org="o", limit=11)
    where.filter("status = :status", status=None).filter("tag = :tag", tag="")
    assert str(where) == "organization_id = :org"
    where.filter("status = :status", status="active").keyset("(created_at, id) <", ["t", "i"])
    assert str(where) == "organization_id = :org AND status = :status AND (created_at, id) < (:after_0, :after_1)"
    assert where.params == {"org": "o", "limit": 11, "status": "active", "after_0": "t", "after_1": "i"}
    assert str(Where("a = :a", a=1).keyset("(x, id) >", None)) == "a = :a"


def test_where_filters_one_template_per_column():
    where = Where().filters("{c} = :{c}", (("donor_id", 1), ("project_id", None), ("status", "open")))
    assert str(where) == "donor_id = :donor_id AND status = :status"
    assert where.params == {"donor_id": 1, "status": "open"}


def test_assignments_cast_the_named_columns_and_json_objects_read_back():
    sets = assignments(("name", "settings"), {"settings": "jsonb"})
    assert sets == "name = :name, settings = CAST(:settings AS jsonb)"
    assert json_object('{"a": 1}') == {"a": 1}
    assert json_object(None) == {}
    assert json_object({"b": 2}) == {"b": 2}


def test_violations_check_text_in_the_common_words():
    v = Violations()
    assert v.check_text("name", "", 5, required=True) is False
    assert v.check_text("note", "", 5) is True
    assert v.check_text("title", "toolong", 5) is False
    assert v.check_text("ok", "fine", 5) is True
    assert v.items == [("name", "is required"), ("title", "must be at most 5 characters")]


class _Row:
    version = 3


def test_found_current_and_update_request():
    row = _Row()
    assert found(row, "todo", "x") is row
    with pytest.raises(NotFound, match="todo x not found"):
        found(None, "todo", "x")
    assert current(row, "todo", "x", 'W/"3"', "etag") is row
    with pytest.raises(Aborted, match="etag is stale"):
        current(row, "todo", "x", 'W/"2"', "etag")
    rid, attrs = update_request("6f1c1f1e-8d1b-4b8e-9a3c-0d6c5e2f7a10", "todo.id", [], {"title": "title"})
    assert str(rid) == "6f1c1f1e-8d1b-4b8e-9a3c-0d6c5e2f7a10" and attrs == ["title"]
    with pytest.raises(InvalidArgument) as e:
        update_request("6f1c1f1e-8d1b-4b8e-9a3c-0d6c5e2f7a10", "todo.id", ["nope"], {"title": "title"})
    assert e.value.violations[0][0] == "update_mask"
