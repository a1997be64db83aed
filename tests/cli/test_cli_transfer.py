"""The givance CLI's `donors import` and `donors export` against the real services: a CSV
file goes in (one bad row rejected with its reason), comes out again, and re-imports as
updates."""

import asyncio
import csv
import io
import json

from cli import givance


def _session(tmp_path, tenant):
    path = tmp_path / "session.json"
    path.write_text(json.dumps({"access_token": tenant.access_token, "refresh_token": tenant.refresh_token,
                                "organization_id": tenant.org_id, "user_id": tenant.user_id}))
    return path


async def _cli(monkeypatch, capsysbinary, hosts, session, *argv):
    monkeypatch.setenv("GIVANCE_CONFIG", str(session))
    identity, crm = hosts
    code = await asyncio.to_thread(givance.main, ["--identity", f"127.0.0.1:{identity.bound_port}",
                                                  "--crm", f"127.0.0.1:{crm.bound_port}", *argv])
    out, err = capsysbinary.readouterr()
    return code, out, err


async def test_import_then_export_round_trip(tmp_path, monkeypatch, capsysbinary, identity_host, crm_host, tenant):
    source = tmp_path / "donors.csv"
    source.write_text(
        "external_id,first_name,last_name,email,tags\n"
        "cli-1,Ada,Lovelace,ada@example.org,board;major\n"
        "cli-2,Grace,Hopper,not-an-email,\n"
        "cli-3,Alan,Turing,alan@example.org,\n")
    session = _session(tmp_path, tenant)
    hosts = (identity_host, crm_host)

    code, out, err = await _cli(monkeypatch, capsysbinary, hosts, session, "donors", "import", str(source))
    assert code == 0, err
    summary = json.loads(out)
    assert (int(summary["created"]), int(summary.get("updated", 0)), int(summary["rejected"])) == (2, 0, 1)
    [rejection] = summary["rejections"]
    assert rejection["external_id"] == "cli-2" and rejection["violations"][0]["field"] == "email"

    code, out, err = await _cli(monkeypatch, capsysbinary, hosts, session, "donors", "export")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out.decode())))
    assert sorted(r["external_id"] for r in rows) == ["cli-1", "cli-3"]
    ada = next(r for r in rows if r["external_id"] == "cli-1")
    assert ada["email"] == "ada@example.org" and set(ada["tags"].split(";")) == {"board", "major"}

    exported = tmp_path / "export.csv"
    exported.write_bytes(out)
    code, out, err = await _cli(monkeypatch, capsysbinary, hosts, session, "donors", "import", str(exported))
    assert code == 0, err
    summary = json.loads(out)
    assert int(summary.get("created", 0)) == 0 and int(summary["updated"]) == 2


async def test_import_of_missing_file_is_a_cli_error(tmp_path, monkeypatch, capsysbinary, identity_host, crm_host,
                                                     tenant):
    code, _, err = await _cli(monkeypatch, capsysbinary, (identity_host, crm_host), _session(tmp_path, tenant),
                              "donors", "import", str(tmp_path / "nope.csv"))
    assert code == 1 and b"no such file" in err
