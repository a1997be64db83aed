"""deploy/k8s: a kustomize base with one folder per service, overlays that render and validate
against the Kubernetes schemas offline, the flows the network policies allow, the Secrets the
manifests reference (templates only), the migrations before the rollout (issue 10, item 6)."""

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from chassis.spec import listed_services, load
from tests.deploy.manifests import BASE, EDGE, K8S, OVERLAYS, by_kind, pod_spec, render, selects

KUBERNETES = "1.31.0"
# (caller, callee) between services, beyond the JWKS: comms and ai read crm with their caller's token.
SERVICE_CALLS: set[tuple[str, str]] = {("comms", "crm"), ("ai", "crm")}


def test_the_base_has_one_folder_and_one_line_per_service_in_the_lists_order():
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    folders = [r for r in kustomization["resources"] if (BASE / r / "kustomization.yaml").is_file()]
    assert [f for f in folders if f in {*listed_services(), *EDGE}] == [*listed_services(), *EDGE]
    for name in [*listed_services(), *EDGE]:
        docs = render(f"base/{name}")
        assert {d["kind"] for d in docs} >= {"Deployment", "Service", "PodDisruptionBudget",
                                              "HorizontalPodAutoscaler", "NetworkPolicy"}, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_renders_and_validates_against_the_kubernetes_schemas(overlay):
    docs = render(f"overlays/{overlay}")
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)  # raises on a schema error
        assert doc["kind"] == "Namespace" or doc["metadata"]["namespace"] == "givance", doc["metadata"]["name"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "givance"


def test_validation_catches_a_broken_manifest():
    deployment = dict(by_kind(render("overlays/development"), "Deployment")["crm"])
    broken = {**deployment, "spec": {**deployment["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def _allowed(policies, source: dict, target: dict, port: int) -> bool:
    """Whether the policies let a pod labelled `source` open `port` on a pod labelled `target`
    (both in the namespace): the target must admit it and the source must be let out."""

    def peer_matches(peers, labels):
        return any(("namespaceSelector" not in p and "ipBlock" not in p and selects(p["podSelector"], labels))
                   or (p.get("namespaceSelector") == {} and selects(p.get("podSelector", {}), labels))
                   for p in peers)

    def port_matches(ports, container_port):
        return not ports or any(p.get("port") in (container_port, *target_names(container_port)) for p in ports)

    def target_names(container_port):
        return [n for n, pt in target.get("_ports", {}).items() if pt == container_port]

    def admits(direction, pod, peer_labels):
        rules = [p["spec"].get(direction, []) for p in policies if selects(p["spec"]["podSelector"], pod)
                 and direction.capitalize() in p["spec"]["policyTypes"]]
        return any(peer_matches(r.get("from" if direction == "ingress" else "to", []), peer_labels)
                   and port_matches(r.get("ports"), port) for rs in rules for r in rs)

    inside = not target.get("external")  # a datastore outside the namespace: its own policies rule it
    return (not inside or admits("ingress", target["labels"], source["labels"])) \
        and admits("egress", source["labels"], target["labels"])


def _pods(docs):
    pods = {}
    for kind in ("Deployment", "Job"):
        for name, w in by_kind(docs, kind).items():
            containers = pod_spec(w)["containers"]
            ports = {p.get("name"): p["containerPort"] for c in containers for p in c.get("ports", [])}
            pods[name] = {"labels": w["spec"]["template"]["metadata"]["labels"], "_ports": ports}
    return pods


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_allow_exactly_the_flows_each_service_needs(overlay):
    docs = render(f"overlays/{overlay}")
    policies, pods = list(by_kind(docs, "NetworkPolicy").values()), _pods(docs)
    assert any(p["spec"]["podSelector"] == {} and not p["spec"].get("ingress") and not p["spec"].get("egress")
               and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"} for p in policies), "no default deny"
    grpc = {n: pods[n]["_ports"]["grpc"] for n in listed_services()}
    callers = [*listed_services(), "gateway"]
    flows = {(a, b) for a in callers for b in grpc if a != b and _allowed(policies, pods[a], pods[b], grpc[b])}
    # The gateway calls every service; every other service fetches identity's JWKS; and the
    # calls one service makes to another (none yet beyond those) are listed here.
    services = listed_services()
    needed = {("gateway", n) for n in services} | {(n, "identity") for n in services if n != "identity"}
    assert flows == needed | SERVICE_CALLS
    assert needed >= {("gateway", "identity"), ("gateway", "crm"), ("crm", "identity")}
    # Each service and the migrations reach PostgreSQL and RabbitMQ; the gateway does not.
    postgres = {"labels": {"app.kubernetes.io/name": "postgres"}, "external": True}
    rabbitmq = {"labels": {"app.kubernetes.io/name": "rabbitmq"}, "external": True}
    for name in [*listed_services(), "givance-migrate"]:
        assert _allowed(policies, pods[name], postgres, 5432) and _allowed(policies, pods[name], rabbitmq, 5672)
    assert not _allowed(policies, pods["gateway"], postgres, 5432)
    # The ingress controller reaches the gateway and nothing else.
    controller = {"labels": {"app.kubernetes.io/name": "ingress-nginx"}}
    ingress = [p for p in policies if selects(p["spec"]["podSelector"], pods["gateway"]["labels"])]
    assert any(peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
               == "ingress-nginx" for p in ingress for r in p["spec"].get("ingress", []) for peer in r["from"])
    assert not _allowed(policies, controller, pods["crm"], grpc["crm"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_knows_every_service_at_its_service_address(overlay):
    (container,) = pod_spec(by_kind(render(f"overlays/{overlay}"), "Deployment")["gateway"])["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    ports = {n: load(n).settings.model_fields["port"].default for n in listed_services()}
    assert yaml.safe_load(env["GATEWAY_BACKENDS"]) == {n: f"{n}:{p}" for n, p in ports.items()}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_sends_v1_to_the_gateway(overlay):
    ingresses = by_kind(render(f"overlays/{overlay}"), "Ingress")
    paths = {p["path"]: p for r in ingresses["gateway"]["spec"]["rules"] for p in r["http"]["paths"]}
    assert paths["/v1"]["pathType"] == "Prefix"
    assert paths["/v1"]["backend"]["service"] == {"name": "gateway", "port": {"name": "http"}}
    # comms' public HTTP (tracking, unsubscribe, webhooks) goes to comms, never through the gateway
    comms = {p["path"]: p for r in ingresses["comms"]["spec"]["rules"] for p in r["http"]["paths"]}
    assert set(comms) == {"/o/", "/c/", "/u/", "/p/", "/k/", "/webhooks/"}
    assert all(p["backend"]["service"] == {"name": "comms", "port": {"name": "http"}} for p in comms.values())
    # billing's webhooks go to its own webhook port, never through the gateway
    hooks = {p["path"]: p for r in ingresses["billing-webhooks"]["spec"]["rules"] for p in r["http"]["paths"]}
    assert hooks["/webhooks"]["backend"]["service"] == {"name": "billing", "port": {"name": "webhooks"}}
    # crm's signed links go to crm's HTTP port, and nothing of /v1 goes anywhere but the gateway
    crm = {p["path"]: p for r in ingresses["crm"]["spec"]["rules"] for p in r["http"]["paths"]}
    assert set(crm) == {"/shared", "/sign"}
    assert all(p["backend"]["service"] == {"name": "crm", "port": {"name": "http"}} for p in crm.values())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_port_a_service_listens_on_is_in_a_service_and_admitted_by_a_policy(overlay):
    """A container port (but the metrics one Prometheus scrapes, base/network.yaml) that no Service
    exposes or no NetworkPolicy admits is a listener nothing can reach."""
    docs = render(f"overlays/{overlay}")
    services, policies = by_kind(docs, "Service").values(), by_kind(docs, "NetworkPolicy").values()
    for name in [*listed_services(), *EDGE]:
        template = by_kind(docs, "Deployment")[name]["spec"]["template"]
        labels = template["metadata"]["labels"]
        (container,) = template["spec"]["containers"]
        for port in container["ports"]:
            if port["name"] == "metrics":
                continue
            wanted = (port["name"], port["containerPort"])
            assert any(selects(s["spec"]["selector"], labels) and any(p.get("targetPort", p["port"]) in wanted
                                                                      for p in s["spec"]["ports"])
                       for s in services), (name, port)
            assert any(selects(pol["spec"]["podSelector"], labels) and any(p.get("port") in wanted
                                                                           for p in rule.get("ports", []))
                       for pol in policies for rule in pol["spec"].get("ingress", [])), (name, port)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_comms_inbound_smtp_listens_and_is_reachable_from_mail_servers_alone(overlay):
    """The List-Unsubscribe mailto's replies: COMMS_INBOUND_SMTP_PORT on the pod, port 25 of its
    own load balancer (nothing else of comms on it), admitted from the internet on that port only."""
    from services.comms.settings import CommsSettings

    docs = render(f"overlays/{overlay}")
    (container,) = pod_spec(by_kind(docs, "Deployment")["comms"])["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    settings = CommsSettings(inbound_smtp_port=env["COMMS_INBOUND_SMTP_PORT"], unsubscribe_domain=env[
        "COMMS_UNSUBSCRIBE_DOMAIN"])
    assert settings.inbound_smtp_port == ports["smtp"] == settings.deployed_inbound_smtp_port > 1024  # non-root
    assert container["readinessProbe"]["grpc"]["port"] == ports["grpc"]  # the probes stay on gRPC
    smtp = by_kind(docs, "Service")["comms-smtp"]["spec"]
    assert smtp["type"] == "LoadBalancer" and smtp["selector"] == {"app.kubernetes.io/name": "comms"}
    assert [(p["port"], p["targetPort"]) for p in smtp["ports"]] == [(25, "smtp")]
    assert "smtp" not in {p["name"] for p in by_kind(docs, "Service")["comms"]["spec"]["ports"]}
    internet = [r for r in by_kind(docs, "NetworkPolicy")["comms"]["spec"]["ingress"]
                if any(peer.get("ipBlock", {}).get("cidr") == "0.0.0.0/0" for peer in r["from"])]
    assert [[p["port"] for p in r["ports"]] for r in internet] == [["smtp"]]


def _secret_refs(docs):
    for kind in ("Deployment", "Job"):
        for name, w in by_kind(docs, kind).items():
            spec = pod_spec(w)
            for c in spec["containers"] + spec.get("initContainers", []):
                for e in c.get("env", []):
                    ref = e.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        yield name, e["name"], ref["name"], ref["key"]


def test_secrets_are_templates_with_placeholders_and_cover_every_reference():
    template = (K8S / "secrets.template.yaml").read_text()
    secrets = {d["metadata"]["name"]: d for d in yaml.safe_load_all(template)}
    for secret in secrets.values():
        for key, value in secret["stringData"].items():
            assert re.search(r"\$\{[A-Z_]+\}", value), f"{secret['metadata']['name']}/{key} holds a value"
        kubernetes_validate.validate(secret, KUBERNETES, strict=True)
    for overlay in OVERLAYS:
        docs = render(f"overlays/{overlay}")
        assert not by_kind(docs, "Secret"), "an overlay ships a Secret"
        for workload, env, name, key in _secret_refs(docs):
            assert key in secrets[name]["stringData"], (workload, env, name, key)
    # Every service has its own credentials: its database role's password and its broker user.
    for name in listed_services():
        data = secrets[f"givance-{name}"]["stringData"]
        assert "db-password" in data and f"amqp://givance_{name}:" in data["rabbitmq-url"]
    config = by_kind(render("base"), "ConfigMap")["givance-config"]["data"]
    assert not any(re.search(r"://[^/@]*:[^/@]*@", v) for v in config.values()), "a password in the ConfigMap"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_uses_its_own_credentials_and_waits_for_the_migrations(overlay):
    docs = render(f"overlays/{overlay}")
    refs = {(w, env): (name, key) for w, env, name, key in _secret_refs(docs)}
    job = by_kind(docs, "Job")["givance-migrate"]
    assert pod_spec(job)["containers"][0]["command"] == ["python", "-m", "chassis.migrate"]
    for name in listed_services():
        prefix = load(name).settings.model_config["env_prefix"]
        assert refs[(name, "RABBITMQ_URL")] == (f"givance-{name}", "rabbitmq-url")
        assert refs[(name, f"{prefix}DB_ROLE_PASSWORD")] == (f"givance-{name}", "db-password")
        # The Job sets the same password on the role it creates.
        assert refs[("givance-migrate", f"{prefix}DB_ROLE_PASSWORD")] == (f"givance-{name}", "db-password")
        (init,) = pod_spec(by_kind(docs, "Deployment")[name])["initContainers"]
        assert init["command"] == ["python", "-m", "chassis.rollout", name]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_scrapes_every_service_on_its_metrics_port(overlay):
    docs = render(f"overlays/{overlay}")
    for name in listed_services():
        template = by_kind(docs, "Deployment")[name]["spec"]["template"]
        ports = {p["name"]: p["containerPort"] for p in template["spec"]["containers"][0]["ports"]}
        settings = load(name).settings(port=ports["grpc"])
        assert template["metadata"]["annotations"]["prometheus.io/port"] == str(ports["metrics"])
        assert settings.resolved_metrics_port() == ports["metrics"]
    # The gateway too: its requests by route and status, rate-limit refusals (gateway.metrics).
    from gateway.settings import GatewaySettings

    template = by_kind(docs, "Deployment")["gateway"]["spec"]["template"]
    (container,) = template["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
    assert annotations["prometheus.io/port"] == str(ports["metrics"]) == env["GATEWAY_METRICS_PORT"]
    assert GatewaySettings(port=ports["http"]).resolved_metrics_port() == ports["metrics"]
    policies = list(by_kind(docs, "NetworkPolicy").values())
    scraped = [p for p in policies if selects(p["spec"]["podSelector"], template["metadata"]["labels"])
               and any(port.get("port") == "metrics" for rule in p["spec"].get("ingress", [])
                       for port in rule.get("ports", []))]
    assert scraped, "no policy lets Prometheus scrape the gateway"
    maps = by_kind(docs, "ConfigMap")
    scrape = yaml.safe_load(maps[_generated(docs, "prometheus-givance")]["data"]["prometheus.yaml"])
    (job,) = scrape["scrape_configs"]
    assert job["kubernetes_sd_configs"][0]["namespaces"]["names"] == ["givance"]
    collector = yaml.safe_load(by_kind(docs, "ConfigMap")[_generated(docs, "otel-collector")]["data"]
                               ["collector-config.yaml"])
    assert collector["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]
    config = by_kind(docs, "ConfigMap")["givance-config"]["data"]
    assert config["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4317"
    # Behind the ingress the gateway and the services must believe the proxies' x-forwarded-for,
    # or every client is the ingress controller (one rate-limit bucket for the whole internet).
    from chassis.proxies import parse_networks

    assert parse_networks(config["TRUSTED_PROXIES"])


def _generated(docs, prefix: str) -> str:
    (name,) = [n for n in by_kind(docs, "ConfigMap") if n.startswith(prefix + "-")]
    return name


def test_the_production_overlay_runs_three_of_everything_spread_over_zones():
    docs = render("overlays/production")
    deployments, scalers = by_kind(docs, "Deployment"), by_kind(docs, "HorizontalPodAutoscaler")
    for name in [*listed_services(), "gateway"]:
        assert deployments[name]["spec"]["replicas"] >= 3 and scalers[name]["spec"]["minReplicas"] >= 3
        keys = {t["topologyKey"] for t in pod_spec(deployments[name])["topologySpreadConstraints"]}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    assert all(":dev" not in c["image"] for d in deployments.values() for c in pod_spec(d)["containers"])
    ingresses = by_kind(docs, "Ingress")
    assert ingresses["gateway"]["spec"]["tls"][0]["secretName"] == "givance-tls"
    assert ingresses["comms"]["spec"]["tls"][0]["secretName"] == "givance-comms-tls"
    assert ingresses["billing-webhooks"]["spec"]["tls"][0]["secretName"] == "givance-tls"
    assert ingresses["crm"]["spec"]["tls"][0]["secretName"] == "givance-tls"


def test_the_operations_guide_and_the_production_overlay_agree():
    guide = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    for phrase in ("quorum", "Citus", "organization_id", "read replica", "replicas"):
        assert phrase in guide, phrase
    scalers = by_kind(render("overlays/production"), "HorizontalPodAutoscaler")
    for name in [*listed_services(), "gateway"]:
        row = re.search(rf"^\| {name} \| (\d+) to (\d+) \|", guide, re.M)
        assert row, f"docs/operations.md: no replicas row for {name}"
        hpa = scalers[name]["spec"]
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (int(row.group(1)), int(row.group(2))), name
