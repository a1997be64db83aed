"""The givance CLI's donor commands against the real services: a stage moves with
`donors move-stage` (update has no --stage), an empty list prints its empty field, and an
import prints one progress line per batch."""

import asyncio
import json

import pytest

from cli import givance


@pytest.fixture
def run(tmp_path, monkeypatch, capsys, identity_host, crm_host, tenant):
    session = tmp_path / "session.json"
    session.write_text(json.dumps({"access_token": tenant.access_token, "refresh_token": tenant.refresh_token,
                                   "organization_id": tenant.org_id, "user_id": tenant.user_id}))
    monkeypatch.setenv("GIVANCE_CONFIG", str(session))
    monkeypatch.setenv("GIVANCE_IDENTITY", f"127.0.0.1:{identity_host.bound_port}")
    monkeypatch.setenv("GIVANCE_CRM", f"127.0.0.1:{crm_host.bound_port}")

    async def _run(*argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(givance.main, list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return _run


async def test_move_stage_moves_the_donor_and_list_finds_it(run):
    code, out, err = await run("donors", "create", "--first-name", "Grace", "--last-name", "Hopper",
                               "--stage", "prospect")
    assert code == 0, err
    donor = json.loads(out)["donor"]

    code, out, err = await run("donors", "move-stage", donor["id"], "--stage", "first_contact",
                               "--reason", "met at the gala", "--etag", donor["etag"])
    assert code == 0, err
    moved = json.loads(out)
    assert moved["donor"]["journey_stage"] == "first_contact"
    assert (moved["change"]["from_stage"], moved["change"]["to_stage"]) == ("prospect", "first_contact")

    code, out, err = await run("donors", "list", "--stage", "first_contact")
    assert code == 0, err
    assert [d["id"] for d in json.loads(out)["donors"]] == [donor["id"]]


async def test_move_stage_off_the_journey_is_refused_with_its_reason(run):
    code, out, err = await run("donors", "create", "--first-name", "Ada", "--last-name", "Lovelace",
                               "--stage", "prospect")
    donor = json.loads(out)["donor"]
    code, _, err = await run("donors", "move-stage", donor["id"], "--stage", "major_donor", "--reason", "hopeful")
    assert code == 1
    assert "FAILED_PRECONDITION" in err and "INVALID_STAGE_TRANSITION" in err


async def test_update_has_no_stage_flag(run):
    with pytest.raises(SystemExit) as exit_:
        await run("donors", "update", "some-id", "--stage", "cultivation")
    assert exit_.value.code == 2


async def test_an_empty_list_prints_its_empty_field(run):
    code, out, err = await run("donors", "list", "--tag", "nobody-has-this-tag")
    assert code == 0, err
    assert json.loads(out) == {"donors": [], "next_page_token": ""}


async def test_import_prints_one_progress_line_per_batch(run, tmp_path):
    source = tmp_path / "donors.csv"
    source.write_text("external_id,first_name,last_name,email\n"
                      "p-1,Ada,Lovelace,ada@example.org\n"
                      "p-2,Grace,Hopper,not-an-email\n")
    code, out, err = await run("donors", "import", str(source))
    assert code == 0, err
    assert err.splitlines() == ["read 2: created 1, updated 0, rejected 1"]
    summary = json.loads(out)
    assert (summary["created"], summary["updated"], summary["rejected"], summary["done"]) == ("1", "0", "1", True)
