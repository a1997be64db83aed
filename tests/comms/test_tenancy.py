"""Another tenant's comms data is never visible or changeable: every RPC, every HTTP endpoint."""

import uuid

import grpc
from givance.comms.v1 import communication_pb2, message_pb2, settings_pb2, suppression_pb2, template_pb2
from givance.comms.v1 import communication_service_pb2 as cpb
from givance.comms.v1 import message_service_pb2 as mpb
from givance.comms.v1 import settings_service_pb2 as spb
from givance.comms.v1 import suppression_service_pb2 as xpb
from givance.comms.v1 import template_service_pb2 as tpb
from google.protobuf import field_mask_pb2

from chassis.spec import load
from gateway.routes import service_modules
from tests.helpers import eventually, fails, gift, new_donor

COVERED = set()


def covers(*names):
    COVERED.update(names)


async def _sent(stubs, tenant, **kw):
    m = (await stubs.messages.SendMessage(mpb.SendMessageRequest(template_name="secret-note", **kw),
                                          metadata=tenant.md)).message

    async def done():
        got = (await stubs.messages.GetMessage(mpb.GetMessageRequest(id=m.id), metadata=tenant.md)).message
        return got.status != message_pb2.MESSAGE_STATUS_QUEUED and got
    return await eventually(done)


async def test_every_rpc_keeps_to_its_tenant(stubs, tenant, other_tenant, mailbox):
    a, b = tenant.md, other_tenant.md
    donor = (await stubs.donors.CreateDonor(new_donor(email=f"a-{uuid.uuid4().hex[:6]}@example.org"),
                                            metadata=a)).donor
    await stubs.donations.RecordDonation(gift(donor.id), metadata=a)
    t = (await stubs.templates.CreateTemplate(tpb.CreateTemplateRequest(template=template_pb2.Template(
        name="secret-note", category="newsletters", subject="For {{ donor.first_name }}", body_text="Only A")),
        metadata=a)).template
    msg = await _sent(stubs, tenant, donor_id=donor.id)
    comm = (await stubs.communications.LogCommunication(cpb.LogCommunicationRequest(
        communication=communication_pb2.Communication(donor_id=donor.id, channel=message_pb2.CHANNEL_PHONE,
                                                      direction=communication_pb2.DIRECTION_OUTBOUND,
                                                      subject="call")), metadata=a)).communication
    sup = (await stubs.suppressions.AddSuppression(xpb.AddSuppressionRequest(
        suppression=suppression_pb2.Suppression(address="a-hidden@example.org")), metadata=a)).suppression
    await stubs.comms_settings.UpdateSendingSettings(spb.UpdateSendingSettingsRequest(
        settings=settings_pb2.SendingSettings(from_name="Org A"), update_mask=field_mask_pb2.FieldMask(
            paths=["from_name"])), metadata=a)

    nf = grpc.StatusCode.NOT_FOUND
    covers("SendMessage", "GetMessage", "ListMessages", "SendReceipt")
    await fails(stubs.messages.SendMessage(mpb.SendMessageRequest(donor_id=donor.id, template_name="thank-you",
                                                                  variables={"amount": "1", "date": "x"}),
                                           metadata=b), nf)
    await fails(stubs.messages.SendMessage(mpb.SendMessageRequest(to_address="x@example.org",
                                                                  template_name="secret-note"), metadata=b), nf)
    await fails(stubs.messages.GetMessage(mpb.GetMessageRequest(id=msg.id), metadata=b), nf)
    assert not (await stubs.messages.ListMessages(mpb.ListMessagesRequest(), metadata=b)).messages
    assert not (await stubs.messages.ListMessages(mpb.ListMessagesRequest(donor_id=donor.id), metadata=b)).messages
    await fails(stubs.messages.SendReceipt(mpb.SendReceiptRequest(donor_id=donor.id, year=2026), metadata=b), nf)

    covers("CreateTemplate", "GetTemplate", "ListTemplates", "UpdateTemplate", "RenderTemplate")
    await fails(stubs.templates.GetTemplate(tpb.GetTemplateRequest(id=t.id), metadata=b), nf)
    names = [x.name for x in (await stubs.templates.ListTemplates(tpb.ListTemplatesRequest(), metadata=b)).templates]
    assert "secret-note" not in names and "thank-you" in names
    await fails(stubs.templates.UpdateTemplate(tpb.UpdateTemplateRequest(
        template=template_pb2.Template(id=t.id, body_text="Mallory"),
        update_mask=field_mask_pb2.FieldMask(paths=["body_text"])), metadata=b), nf)
    await fails(stubs.templates.RenderTemplate(tpb.RenderTemplateRequest(template_name="secret-note"), metadata=b), nf)
    await fails(stubs.templates.RenderTemplate(tpb.RenderTemplateRequest(
        template_name="thank-you", donor_id=donor.id, variables={"amount": "1", "date": "x"}), metadata=b), nf)
    # B's own template of the same name is B's alone
    mine = (await stubs.templates.CreateTemplate(tpb.CreateTemplateRequest(template=template_pb2.Template(
        name="secret-note", category="newsletters", subject="B", body_text="B's")), metadata=b)).template
    assert mine.id != t.id

    covers("LogCommunication", "GetCommunication", "ListCommunications")
    await fails(stubs.communications.LogCommunication(cpb.LogCommunicationRequest(
        communication=communication_pb2.Communication(donor_id=donor.id, channel=message_pb2.CHANNEL_PHONE,
                                                      direction=communication_pb2.DIRECTION_INBOUND)),
        metadata=b), nf)
    await fails(stubs.communications.GetCommunication(cpb.GetCommunicationRequest(id=comm.id), metadata=b), nf)
    assert not (await stubs.communications.ListCommunications(cpb.ListCommunicationsRequest(),
                                                              metadata=b)).communications
    assert not (await stubs.communications.ListCommunications(cpb.ListCommunicationsRequest(donor_id=donor.id),
                                                              metadata=b)).communications

    covers("AddSuppression", "ListSuppressions", "DeleteSuppression", "ListConsentChanges")
    assert not (await stubs.suppressions.ListSuppressions(xpb.ListSuppressionsRequest(), metadata=b)).suppressions
    await fails(stubs.suppressions.DeleteSuppression(xpb.DeleteSuppressionRequest(id=sup.id), metadata=b), nf)
    assert not (await stubs.suppressions.ListConsentChanges(xpb.ListConsentChangesRequest(
        address="a-hidden@example.org"), metadata=b)).changes
    theirs = (await stubs.suppressions.AddSuppression(xpb.AddSuppressionRequest(
        suppression=suppression_pb2.Suppression(address="a-hidden@example.org")), metadata=b)).suppression
    assert theirs.id != sup.id and theirs.organization_id == other_tenant.org_id
    covers("GrantConsent")
    mine = await stubs.suppressions.GrantConsent(xpb.GrantConsentRequest(
        address="a-hidden@example.org", categories=["newsletters"], source="b-form"), metadata=b)
    assert [c.source for c in mine.changes] == ["b-form", "api"]  # B's own: its grant, its suppression
    assert "b-form" not in [c.source for c in (await stubs.suppressions.ListConsentChanges(
        xpb.ListConsentChangesRequest(address="a-hidden@example.org"), metadata=a)).changes]

    covers("GetSendingSettings", "UpdateSendingSettings")
    # "AddWhatsAppStaff", "ListWhatsAppStaff", "RemoveWhatsAppStaff": tests/comms/test_whatsapp.py checks
    # them across organizations (a number is one organization's; another sees and removes nothing)
    got = (await stubs.comms_settings.GetSendingSettings(spb.GetSendingSettingsRequest(), metadata=b)).settings
    assert got.from_name == "" and got.organization_id == other_tenant.org_id
    await stubs.comms_settings.UpdateSendingSettings(spb.UpdateSendingSettingsRequest(
        settings=settings_pb2.SendingSettings(from_name="Org B"), update_mask=field_mask_pb2.FieldMask(
            paths=["from_name"])), metadata=b)

    # and nothing of A's changed
    assert (await stubs.templates.GetTemplate(tpb.GetTemplateRequest(id=t.id), metadata=a)).template.etag == t.etag
    assert [s.id for s in (await stubs.suppressions.ListSuppressions(xpb.ListSuppressionsRequest(),
                                                                      metadata=a)).suppressions] == [sup.id]
    assert (await stubs.comms_settings.GetSendingSettings(spb.GetSendingSettingsRequest(),
                                                          metadata=a)).settings.from_name == "Org A"


def test_the_tenancy_test_covers_every_comms_rpc():
    import tests.comms.test_tenancy  # noqa: F401 - COVERED fills as the test above runs; here, statically
    declared = {m.name for mod in service_modules(["comms"]) for s in mod.DESCRIPTOR.services_by_name.values()
                for m in s.methods}
    source = open(__file__).read()
    # the generation sessions' RPCs are covered in test_generation_tenancy.py
    source += open(__file__.replace("test_tenancy.py", "test_generation_tenancy.py")).read()
    named = {n for n in declared if f'"{n}"' in source}
    assert load("comms").name == "comms" and declared and named == declared, declared - named


async def test_http_tokens_are_bound_to_their_tenant_and_message(stubs, tenant, comms_http, mailbox):
    """A tampered token is refused; a token names rows, never a destination."""
    t = await stubs.templates.CreateTemplate(tpb.CreateTemplateRequest(template=template_pb2.Template(
        name="linky", category="newsletters", subject="s", body_text="t",
        body_html='<a href="https://good.example/x">x</a>')), metadata=tenant.md)
    assert t
    to = f"linky-{uuid.uuid4().hex[:6]}@example.org"
    await stubs.messages.SendMessage(mpb.SendMessageRequest(to_address=to, template_name="linky"), metadata=tenant.md)
    (mail,) = await mailbox.wait_for(to)
    html = mail.get_body(("html",)).get_content()
    import re

    click = re.search(r'href="[^"]*(/c/[^"]+)"', html).group(1)
    unsub = re.search(r"<([^>]*/u/[^>]+)>", mail["List-Unsubscribe"]).group(1).split("/u/", 1)[1]
    tampered = click[:-2] + ("AA" if not click.endswith("AA") else "BB")
    for bad in (tampered, "/c/" + unsub, "/c/x.y.z", "/c/" + "a" * 400):
        assert (await comms_http.get(bad)).status_code == 404, bad
    r = await comms_http.get(click, headers={"user-agent": "Mozilla/5.0"})
    assert r.status_code == 302 and r.headers["location"] == "https://good.example/x"
    # the preference page's token speaks for its own message only; a click token opens nothing there
    prefs = re.search(r'href="[^"]*(/p/[^"]+)"', html).group(1)
    assert (await comms_http.get(prefs)).status_code == 200 and to in (await comms_http.get(prefs)).text
    forged = prefs[:-2] + ("AA" if not prefs.endswith("AA") else "BB")
    for bad in ("/p/" + click.removeprefix("/c/"), "/p/" + unsub, forged, "/k/" + prefs[3:]):
        assert (await comms_http.get(bad)).status_code == 404, bad
    # the unsubscribe token is not a click token and vice versa
    assert (await comms_http.post("/u/" + click.removeprefix("/c/"), content=b"List-Unsubscribe=One-Click",
                                  headers={"content-type": "application/x-www-form-urlencoded"})).status_code == 404
