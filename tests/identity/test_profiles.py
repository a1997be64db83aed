"""Seed 002's profile fields (issue 17, item 1): an organization's profile through
UpdateOrganization (field masks, etags, sizes, the tax id sealed and masked) and a user's
username, avatar and country through UpdateAccount."""

import uuid

import grpc
from givance.identity.v1 import account_service_pb2 as apb
from givance.identity.v1 import organization_pb2
from givance.identity.v1 import organization_service_pb2 as opb
from google.protobuf import field_mask_pb2

from tests.helpers import error_reason, fails, invalid

Org = organization_pb2.Organization


def _update(stubs, t, org: Org, *paths: str):
    return stubs.organizations.UpdateOrganization(opb.UpdateOrganizationRequest(
        organization=org, update_mask=field_mask_pb2.FieldMask(paths=list(paths))), metadata=t.md)


def _account(stubs, t, *paths: str, **fields):
    return stubs.accounts.UpdateAccount(apb.UpdateAccountRequest(
        account=apb.Account(**fields), update_mask=field_mask_pb2.FieldMask(paths=list(paths))), metadata=t.md)


async def test_the_organization_profile_is_read_and_updated_by_mask_with_the_tax_id_masked(stubs, tenant, other_tenant,
                                                                                          admin_db):
    org = (await stubs.organizations.GetOrganization(opb.GetOrganizationRequest(), metadata=tenant.md)).organization
    assert (org.timezone, org.tax_id_masked, org.company_size) == ("UTC", "", Org.COMPANY_SIZE_UNSPECIFIED)
    profile = Org(
        etag=org.etag, description="  We fund wells.\n\nAnd schools. ", logo_url="https://cdn.example.org/logo.png",
        website="https://hope.example.org", industry="Water", company_size=Org.COMPANY_SIZE_SME,
        contact_email="Hello@Hope.Example.org", contact_phone="(202) 555-0143", timezone="America/New_York",
        tax_id="12-345 6789", registration_number="CH-1234",
        address=organization_pb2.OrganizationAddress(line1="1 Main St", city="Springfield", region="IL",
                                                     postal_code="62701", country_code="us"))
    paths = ("description", "logo_url", "website", "industry", "company_size", "contact_email", "contact_phone",
             "timezone", "tax_id", "registration_number", "address")
    got = (await _update(stubs, tenant, profile, *paths)).organization
    assert got.description == "We fund wells.\n\nAnd schools." and got.contact_email == "hello@hope.example.org"
    assert got.contact_phone == "+12025550143" and got.address.country_code == "US"  # read in the address' country
    assert got.tax_id_masked == "\u2022\u2022\u2022\u2022 6789" and got.tax_id == ""
    assert got.company_size == Org.COMPANY_SIZE_SME and got.timezone == "America/New_York"
    assert got.etag != org.etag and got.name == org.name  # what the mask did not name is kept
    # the tax id is sealed at rest: never in clear in the table
    stored = await admin_db.fetchrow("SELECT tax_id_sealed, tax_id_last4 FROM identity.organizations WHERE id = $1",
                                     uuid.UUID(tenant.org_id))
    assert "123456789" not in stored["tax_id_sealed"] and stored["tax_id_last4"] == "6789"
    again = (await stubs.organizations.GetOrganization(opb.GetOrganizationRequest(), metadata=tenant.md)).organization
    assert again.website == "https://hope.example.org" and again.address.city == "Springfield"
    # one field, by its path; a stale etag is refused
    one = (await _update(stubs, tenant, Org(industry="Health", etag=again.etag), "industry")).organization
    assert (one.industry, one.website) == ("Health", "https://hope.example.org")
    await fails(_update(stubs, tenant, Org(industry="Old", etag=again.etag), "industry"), grpc.StatusCode.ABORTED)
    # another tenant sees none of it
    theirs = (await stubs.organizations.GetOrganization(opb.GetOrganizationRequest(),
                                                        metadata=other_tenant.md)).organization
    assert (theirs.industry, theirs.tax_id_masked) == ("", "")
    await fails(stubs.organizations.GetOrganization(opb.GetOrganizationRequest(id=tenant.org_id),
                                                    metadata=other_tenant.md), grpc.StatusCode.NOT_FOUND)


async def test_bad_profile_input_is_named_and_nothing_is_written(stubs, tenant, admin_db):
    org = (await stubs.organizations.GetOrganization(opb.GetOrganizationRequest(), metadata=tenant.md)).organization
    cases = [
        (Org(description="x" * 2001), "description"),
        (Org(logo_url="http://cdn.example.org/logo.png"), "logo_url"),  # https only
        (Org(website="hope.example.org"), "website"),
        (Org(website="https://" + "a" * 500 + ".org"), "website"),
        (Org(industry="x" * 101), "industry"),
        (Org(company_size=9), "company_size"),
        (Org(contact_email="not an email"), "contact_email"),
        (Org(contact_phone="12"), "contact_phone"),
        (Org(timezone="Mars/Olympus"), "timezone"),
        (Org(tax_id="12"), "tax_id"),
        (Org(registration_number="x" * 101), "registration_number"),
        (Org(address=organization_pb2.OrganizationAddress(country_code="XX")), "address.country_code"),
        (Org(address=organization_pb2.OrganizationAddress(postal_code="1" * 21)), "address.postal_code"),
    ]
    for message, field in cases:
        await invalid(_update(stubs, tenant, message, field.split(".")[0]), f"organization.{field}")
    await invalid(_update(stubs, tenant, Org(), "settings"), "update_mask")
    after = (await stubs.organizations.GetOrganization(opb.GetOrganizationRequest(), metadata=tenant.md)).organization
    assert after.etag == org.etag


async def test_a_user_sets_a_username_unique_whatever_its_case_an_avatar_and_a_country(stubs, tenant, other_tenant):
    name = f"ada_{uuid.uuid4().hex[:8]}"
    me = (await _account(stubs, tenant, "username", "avatar_url", "country_code", username=name.upper(),
                         avatar_url="https://cdn.example.org/ada.png", country_code="gb")).account
    assert (me.username, me.avatar_url, me.country_code) == (name.upper(), "https://cdn.example.org/ada.png", "GB")
    e = await fails(_account(stubs, other_tenant, "username", username=name), grpc.StatusCode.ALREADY_EXISTS)
    assert error_reason(e) == "USERNAME_TAKEN"
    # the etag: a stale one is refused, a current one accepted; names by mask only
    renamed = (await _account(stubs, tenant, "first_name", first_name="Augusta", etag=me.etag)).account
    assert (renamed.first_name, renamed.username) == ("Augusta", name.upper())
    await fails(_account(stubs, tenant, "first_name", first_name="Ada", etag=me.etag), grpc.StatusCode.ABORTED)
    # cleared, the username is free again
    await _account(stubs, tenant, "username", username="")
    assert (await _account(stubs, other_tenant, "username", username=name)).account.username == name
    got = (await stubs.accounts.GetAccount(apb.GetAccountRequest(), metadata=tenant.md)).account
    assert (got.username, got.country_code) == ("", "GB")


async def test_bad_account_input_is_named_and_nothing_is_written(stubs, tenant):
    before = (await stubs.accounts.GetAccount(apb.GetAccountRequest(), metadata=tenant.md)).account
    for field, value in (("username", "ab"), ("username", "-ada"), ("username", "a" * 31), ("username", "ada lovelace"),
                         ("avatar_url", "http://cdn.example.org/a.png"), ("avatar_url", "x" * 501),
                         ("country_code", "ZZ"), ("first_name", "x" * 101)):
        await invalid(_account(stubs, tenant, field, **{field: value}), f"account.{field}")
    await invalid(_account(stubs, tenant, "email", email="x@example.org"), "update_mask")
    after = (await stubs.accounts.GetAccount(apb.GetAccountRequest(), metadata=tenant.md)).account
    assert after.etag == before.etag
