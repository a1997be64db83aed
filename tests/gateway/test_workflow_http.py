"""Workflows through the HTTP/JSON gateway: a definition as JSON in, its problems as 400 with
the path inside it, the status moves and a manual start as custom methods."""

from __future__ import annotations

import pytest

from tests.gateway.test_gateway import http, sign_up  # noqa: F401 (the fixture)

DEFINITION = {"triggers": [{"type": "manual"}],
              "steps": [{"id": "hello", "type": "set_field", "field": "vars.greeting", "value": "hi {{input.who}}"}]}


@pytest.fixture
async def auth(http):  # noqa: F811
    return await sign_up(http, "Workflow Fund")


async def test_create_activate_start_and_read(http, auth):  # noqa: F811
    templates = await http.get("/v1/workflowTemplates", headers=auth)
    assert templates.status_code == 200 and len(templates.json()["templates"]) == 3
    r = await http.post("/v1/workflows", json={"name": "Hello", "definition": DEFINITION}, headers=auth)
    assert r.status_code == 200, r.text
    w = r.json()["workflow"]
    assert w["definition"] == DEFINITION and w["status"] == "WORKFLOW_STATUS_DRAFT" and w["webhookSecret"]
    a = await http.post(f"/v1/workflows/{w['id']}:activate", json={}, headers=auth)
    assert a.status_code == 200 and a.json()["workflow"]["status"] == "WORKFLOW_STATUS_ACTIVE"
    s = await http.post(f"/v1/workflows/{w['id']}:start", json={"input": {"who": "Ada"}}, headers=auth)
    assert s.status_code == 200, s.text
    ex = s.json()["execution"]
    assert ex["workflowId"] == w["id"] and ex["triggerEvent"] == "manual"
    got = await http.get(f"/v1/workflowExecutions/{ex['id']}", headers=auth)
    assert got.status_code == 200 and got.json()["execution"]["id"] == ex["id"]
    listed = await http.get("/v1/workflowExecutions", params={"workflow_id": w["id"]}, headers=auth)
    assert [e["id"] for e in listed.json()["executions"]] == [ex["id"]]


async def test_a_bad_definition_is_400_naming_the_path(http, auth):  # noqa: F811
    bad = {"triggers": [{"type": "manual"}], "steps": [{"id": "x", "type": "teleport"}]}
    r = await http.post("/v1/workflows", json={"name": "Bad", "definition": bad}, headers=auth)
    assert r.status_code == 400
    err = r.json()["error"]
    fields = [v["field"] for d in err["details"] if d["@type"].endswith("BadRequest") for v in d["fieldViolations"]]
    assert fields == ["workflow.definition.steps[0].type"]
