"""The one list of services (pyproject.toml, [tool.givance] services) and what must follow
it: every service has its folder, its spec, one default port (in its settings) and its
deployment; nothing else names the services or their ports differently."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from chassis.settings import ServiceSettings
from chassis.spec import listed_services, load

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
GATEWAY_PORT = 8080  # the HTTP/JSON gateway (gateway/), in front of the listed services


def default_port(name: str) -> int:
    return load(name).settings.model_fields["port"].default


def http_ports(name: str) -> set[int]:
    """A service's own public HTTP ports besides gRPC (comms' tracking, billing's webhooks)."""
    return load(name).settings.model_construct().public_http_ports()  # the defaults, not this run's environment


def tcp_ports(name: str) -> set[int]:
    """A service's other listeners when deployed (comms' inbound SMTP)."""
    return load(name).settings.model_construct().public_tcp_ports()


def test_the_list_is_the_folders_and_each_declares_itself():
    services = listed_services()
    folders = sorted(p.parent.name for p in (ROOT / "services").glob("*/__main__.py"))
    assert sorted(services) == folders
    assert len(set(services)) == len(services)
    ports = [default_port(name) for name in services]
    assert all(ports) and len(set(ports)) == len(ports), dict(zip(services, ports, strict=True))


@pytest.mark.parametrize("name", listed_services())
def test_every_service_has_its_kubernetes_folder_on_its_port(name):
    folder = DEPLOY / "k8s" / "base" / name  # its own ports (its network policy names those it calls)
    text = "\n".join((folder / f).read_text() for f in ("deployment.yaml", "service.yaml"))
    settings = load(name).settings()
    port, metrics = default_port(name), settings.resolved_metrics_port()
    prefix = load(name).settings.model_config["env_prefix"]
    ports = {int(p) for p in re.findall(r"\b(?:containerPort|port): (\d+)", text)}
    # a Service may publish another listener on a port of its own (comms-smtp: 25 to inbound SMTP)
    deployment, services = (list(yaml.safe_load_all((folder / f).read_text())) for f in ("deployment.yaml",
                                                                                        "service.yaml"))
    container_ports = {p["name"]: p["containerPort"] for d in deployment
                       for p in d["spec"]["template"]["spec"]["containers"][0]["ports"]}
    published = {p["port"] for d in services for p in d["spec"]["ports"]
                 if container_ports.get(p["targetPort"]) in tcp_ports(name)}
    assert ports == {port, metrics} | http_ports(name) | tcp_ports(name) | published
    for other in tcp_ports(name):
        assert re.search(rf'- name: {prefix}\w+_PORT\n\s+value: "{other}"', text), (name, other)
    assert re.search(rf'- name: {prefix}PORT\n\s+value: "{port}"', text)
    assert re.search(rf'- name: {prefix}METRICS_PORT\n\s+value: "{metrics}"', text)
    assert re.search(rf"- name: SERVICE\n\s+value: {name}\n", text)


@pytest.mark.parametrize("name", listed_services())
def test_every_service_is_in_the_compose_file_on_its_port(name):
    text = (DEPLOY / "compose.yaml").read_text()
    port = default_port(name)
    block = re.search(rf"\n  {name}:\n(.*?)(?=\n  \w[\w-]*:\n|\nvolumes:)", text, re.S)
    assert block, f"no {name} service in deploy/compose.yaml"
    assert f"SERVICE: {name}\n" in block.group(1)
    assert f'"127.0.0.1:{port}:{port}"' in block.group(1)
    for other in tcp_ports(name):
        assert f'"127.0.0.1:{other}:{other}"' in block.group(1), (name, other)


def test_the_image_exposes_every_port_and_nothing_names_the_services():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    exposed = {int(p) for p in re.search(r"^EXPOSE (.*)$", dockerfile, re.M).group(1).split()}
    assert exposed == {default_port(name) for name in listed_services()} | {GATEWAY_PORT} | {
        p for name in listed_services() for p in http_ports(name) | tcp_ports(name)}
    for path in (DEPLOY / "compose.yaml", DEPLOY / "k8s" / "base" / "migrate" / "job.yaml"):
        assert '"chassis.migrate"]' in path.read_text(), f"{path}: migrate every listed service"


def test_the_identity_address_everywhere_is_identitys_port():
    port = default_port("identity")
    assert ServiceSettings.model_fields["identity_address"].default == f"127.0.0.1:{port}"
    for path in (DEPLOY / "compose.yaml", DEPLOY / "k8s" / "base" / "config.yaml"):
        assert re.findall(r"IDENTITY_ADDRESS: (\S+)", path.read_text()) == [f"identity:{port}"], path


def test_make_migrates_and_runs_the_listed_services_unless_told():
    lines = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert re.search(r"-m chassis\.migrate *$", lines, re.M), lines
    assert re.search(r"-m tools\.runall *$", lines, re.M), lines
    lines = subprocess.run(["make", "-n", "run", "SERVICES=crm"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout
    assert re.search(r"-m tools\.runall crm$", lines, re.M), lines


def test_the_cli_defaults_are_the_services_ports():
    from cli import givance

    assert givance.DEFAULT_IDENTITY == f"127.0.0.1:{default_port('identity')}"
    assert givance.DEFAULT_CRM == f"127.0.0.1:{default_port('crm')}"
