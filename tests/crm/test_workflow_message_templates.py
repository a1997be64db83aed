"""A workflow whose send_message step names a message template the organization does not have is
refused when it is saved, INVALID_ARGUMENT naming the step's `template` in the definition, and
nothing is written; the catalogue is comms' (the real comms host, asked with the caller's own
credentials), its system templates included.

The suite's crm host has no comms address (its messenger records, it checks no template), so
these tests call the use cases with crm's catalogue of comms, as crm's servicer does when
CRM_COMMS_ADDRESS is set.
"""

import uuid

import pytest
from givance.comms.v1 import template_pb2
from givance.comms.v1 import template_service_pb2 as tpb

from chassis import context
from chassis.crypto import Keyring
from chassis.errors import InvalidArgument
from services.crm.handlers import workflows as handlers
from services.crm.handlers.workflows import WorkflowFields
from services.crm.providers.message_templates import CommsTemplates
from services.crm.settings import CrmSettings


def _definition(*templates: str) -> dict:
    return {"triggers": [{"type": "manual"}],
            "steps": [{"id": "first", "type": "create_todo", "title": "Call"},
                      *({"id": f"send{i}", "type": "send_message", "template": t, "to": "donor"}
                        for i, t in enumerate(templates))]}


@pytest.fixture
async def catalog(hosts):
    c = CommsTemplates(f"127.0.0.1:{hosts['comms'].bound_port}")
    yield c
    await c.close()


@pytest.fixture
def as_tenant(tenant):
    token = context.bind(context.RequestContext(tenant_id=uuid.UUID(tenant.org_id), principal=None,
                                                token=tenant.access_token))
    yield tenant
    context.reset(token)


async def _count(admin_db, org: str) -> int:
    return await admin_db.fetchval("SELECT count(*) FROM crm.workflows WHERE organization_id = $1", uuid.UUID(org))


async def test_a_missing_template_is_named_and_nothing_written(crm_db, admin_db, catalog, as_tenant, stubs):
    keys, org = Keyring(CrmSettings().workflow_secret_keys), uuid.UUID(as_tenant.org_id)
    with pytest.raises(InvalidArgument) as refused:
        await handlers.create_workflow(crm_db, keys, org, WorkflowFields(
            name="Welcome", definition=_definition("thank-you", "no-such-template")), "", catalog)
    assert [f for f, _ in refused.value.violations] == ["workflow.definition.steps[2].template"]
    assert "no-such-template" in refused.value.violations[0][1]
    assert await _count(admin_db, as_tenant.org_id) == 0
    # the organization's own template, made in comms, is one it has
    await stubs.templates.CreateTemplate(tpb.CreateTemplateRequest(template=template_pb2.Template(
        name="welcome-client", category="onboarding", subject="Welcome", body_text="Welcome aboard")),
        metadata=as_tenant.md)
    made = await handlers.create_workflow(crm_db, keys, org, WorkflowFields(
        name="Welcome", definition=_definition("thank-you", "welcome-client")), "", catalog)
    # a shipped template's message (lapsed-donor-reminder) is one of comms' system templates
    lapsed = await handlers.create_workflow(crm_db, keys, org, WorkflowFields(
        template_id="templates/lapsed-donor-sequence"), "", catalog)
    assert lapsed.workflow.definition["steps"][0]["template"] == "lapsed-donor-reminder"
    # an update that names a missing one is refused too, the workflow unchanged
    with pytest.raises(InvalidArgument) as refused:
        await handlers.update_workflow(crm_db, org, str(made.workflow.id), "", WorkflowFields(
            definition=_definition("gone")), ["definition"], catalog)
    assert [f for f, _ in refused.value.violations] == ["workflow.definition.steps[1].template"]
    kept = await handlers.get_workflow(crm_db, org, str(made.workflow.id))
    assert kept.definition_version == 1 and kept.definition["steps"][1]["template"] == "thank-you"
    # another organization's template is not this one's
    other = await stubs.sign_up("Elsewhere")
    with pytest.raises(InvalidArgument):
        await catalog_check(catalog, other, "welcome-client")


async def catalog_check(catalog, tenant, name: str) -> None:
    token = context.bind(context.RequestContext(tenant_id=uuid.UUID(tenant.org_id), principal=None,
                                                token=tenant.access_token))
    try:
        await handlers.check_message_templates(catalog, _definition(name), "workflow.definition")
    finally:
        context.reset(token)
