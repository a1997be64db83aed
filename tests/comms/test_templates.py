"""Templates: versions, declared variables, the sandbox, system templates an organization overrides,
RenderTemplate previews."""

from __future__ import annotations

import grpc
from givance.comms.v1 import template_pb2
from givance.comms.v1 import template_service_pb2 as tpb
from google.protobuf import field_mask_pb2

from tests.helpers import fails, invalid, new_donor


async def test_versions_and_previews_with_sample_or_real_donor_data(stubs, tenant):
    md = tenant.md
    t = (await stubs.templates.CreateTemplate(tpb.CreateTemplateRequest(template=template_pb2.Template(
        name="appeal", category="appeals", subject="Dear {{ donor.first_name }}",
        body_text="Give {{ ask }} today", body_html="<p>Give <b>{{ ask }}</b></p>", variables=["ask"]),
        request_id="tpl-1"), metadata=md)).template
    again = (await stubs.templates.CreateTemplate(tpb.CreateTemplateRequest(template=template_pb2.Template(
        name="appeal", category="appeals", subject="s", body_text="other"), request_id="tpl-1"),
        metadata=md)).template
    assert again.id == t.id and again.version == 1
    await fails(stubs.templates.CreateTemplate(tpb.CreateTemplateRequest(template=template_pb2.Template(
        name="appeal", category="appeals", subject="s", body_text="dup")), metadata=md),
        grpc.StatusCode.ALREADY_EXISTS)
    v2 = (await stubs.templates.UpdateTemplate(tpb.UpdateTemplateRequest(
        template=template_pb2.Template(id=t.id, etag=t.etag, body_text="Please give {{ ask }} <now>"),
        update_mask=field_mask_pb2.FieldMask(paths=["body_text"])), metadata=md)).template
    assert v2.version == 2 and v2.subject == t.subject and v2.etag != t.etag
    await fails(stubs.templates.UpdateTemplate(tpb.UpdateTemplateRequest(
        template=template_pb2.Template(id=t.id, etag=t.etag, body_text="stale"),
        update_mask=field_mask_pb2.FieldMask(paths=["body_text"])), metadata=md), grpc.StatusCode.ABORTED)
    old = (await stubs.templates.GetTemplate(tpb.GetTemplateRequest(id=t.id, version=1), metadata=md)).template
    assert old.body_text == "Give {{ ask }} today" and old.version == 1
    preview = await stubs.templates.RenderTemplate(tpb.RenderTemplateRequest(
        template_name="appeal", variables={"ask": "<$50>"}), metadata=md)
    assert preview.subject == "Dear Ada" and preview.body_text == "Please give <$50> <now>"
    assert preview.body_html == "<p>Give <b>&lt;$50&gt;</b></p>" and preview.template_version == 2
    donor = (await stubs.donors.CreateDonor(new_donor(first_name="Grace"), metadata=md)).donor
    real = await stubs.templates.RenderTemplate(tpb.RenderTemplateRequest(
        template_name="appeal", donor_id=donor.id, variables={"ask": "$5"}), metadata=md)
    assert real.subject == "Dear Grace"
    await invalid(stubs.templates.RenderTemplate(tpb.RenderTemplateRequest(
        template_name="appeal", variables={"undeclared": "x"}), metadata=md), "variables")


async def test_an_organization_overrides_a_system_template(stubs, tenant):
    md = tenant.md
    names = {t.name: t for t in (await stubs.templates.ListTemplates(tpb.ListTemplatesRequest(),
                                                                     metadata=md)).templates}
    assert {"thank-you", "receipt", "invitation", "password-reset", "email-verification"} <= set(names)
    assert names["thank-you"].system and names["thank-you"].id == ""
    await stubs.templates.CreateTemplate(tpb.CreateTemplateRequest(template=template_pb2.Template(
        name="thank-you", category="thank-you", subject="Bless you, {{ donor.first_name }}",
        body_text="Your {{ amount }} arrived", variables=["amount", "date"])), metadata=md)
    listed = [t for t in (await stubs.templates.ListTemplates(tpb.ListTemplatesRequest(), metadata=md)).templates
              if t.name == "thank-you"]
    assert len(listed) == 1 and not listed[0].system
    preview = await stubs.templates.RenderTemplate(tpb.RenderTemplateRequest(
        template_name="thank-you", variables={"amount": "$9"}), metadata=md)
    assert preview.subject == "Bless you, Ada" and preview.body_text == "Your $9 arrived"


async def test_the_sandbox_refuses_code_and_attributes_it_was_not_given(stubs, tenant):
    md = tenant.md
    for i, body in enumerate(["{{ donor.__class__.__mro__ }}", "{{ ''.__class__.__mro__[1].__subclasses__() }}",
                              "{{ donor.items.__globals__ }}"]):
        await stubs.templates.CreateTemplate(tpb.CreateTemplateRequest(template=template_pb2.Template(
            name=f"evil-{i}", category="newsletters", subject="s", body_text=body)), metadata=md)
        err = await fails(stubs.templates.RenderTemplate(tpb.RenderTemplateRequest(template_name=f"evil-{i}"),
                                                         metadata=md))
        assert err.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT), err.details()
        assert "mro" not in err.details() or "sandbox" in err.details() or "undefined" in err.details()
