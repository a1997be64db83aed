"""deploy/compose.yaml runs the whole suite on one Docker host: it cannot run here (no Docker
engine), so its structure is checked: every listed service, the gateway in front of them, the
migrations first, each dependency declared, each published port once, on loopback."""

import re
from pathlib import Path

import yaml

from chassis.spec import listed_services, load

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "compose.yaml"


def test_the_compose_file_runs_every_service_and_the_gateway_after_the_migrations():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert {*listed_services(), "gateway", "migrate", "postgres", "rabbitmq", "redis"} <= set(services)
    for name, svc in services.items():
        for dep, condition in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on an unknown {dep}"
            assert condition["condition"] in {"service_healthy", "service_started", "service_completed_successfully"}
        for config in svc.get("configs", []):
            assert config["source"] in compose["configs"], name
    for name in listed_services():
        svc = services[name]
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert svc["environment"]["SERVICE"] == name and svc["image"] == services["migrate"]["image"]
        metrics = load(name).settings().resolved_metrics_port()
        assert f"127.0.0.1:{metrics}:{metrics}" in svc["ports"], name
    # comms' inbound SMTP (unsubscribe mail) is published on the port it listens on
    inbound = services["comms"]["environment"]["COMMS_INBOUND_SMTP_PORT"]
    assert f"127.0.0.1:{inbound}:{inbound}" in services["comms"]["ports"]
    gateway = services["gateway"]
    assert gateway["command"] == ["python", "-m", "gateway"] and "127.0.0.1:8080:8080" in gateway["ports"]
    from gateway.settings import GatewaySettings

    metrics = GatewaySettings().resolved_metrics_port()
    assert f"127.0.0.1:{metrics}:{metrics}" in gateway["ports"]
    assert set(listed_services()) <= set(gateway["depends_on"]), "the gateway starts after every service"
    backends = yaml.safe_load(gateway["environment"]["GATEWAY_BACKENDS"])
    assert backends == {n: f"{n}:{load(n).settings.model_fields['port'].default}" for n in listed_services()}
    published = [p for svc in services.values() for p in svc.get("ports", [])]
    assert len(published) == len(set(published)) and all(re.match(r"127\.0\.0\.1:\d+:\d+$", p) for p in published)
    collector = yaml.safe_load(compose["configs"]["otel-collector"]["content"])
    assert collector["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]
