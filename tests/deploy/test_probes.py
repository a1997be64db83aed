"""Every Deployment of every overlay tells readiness from liveness, drains before it stops,
keeps pods through voluntary disruptions, and is hardened (issue 9 item 16, issue 10 item 6)."""

import pytest

from chassis.server import LIVENESS
from chassis.spec import listed_services
from tests.deploy.manifests import OVERLAYS, by_kind, pod_spec, render, selects


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name", listed_services())
def test_grpc_services_probe_readiness_and_liveness_apart(overlay, name):
    deployment = by_kind(render(f"overlays/{overlay}"), "Deployment")[name]
    pod = pod_spec(deployment)
    (container,) = pod["containers"]
    ready, live = container["readinessProbe"]["grpc"], container["livenessProbe"]["grpc"]
    assert ready.get("service", "") == "" and live["service"] == LIVENESS
    assert ready["port"] == live["port"] == container["ports"][0]["containerPort"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_probes_over_http(overlay):
    (container,) = pod_spec(by_kind(render(f"overlays/{overlay}"), "Deployment")["gateway"])["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["ports"] == [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9469}]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_is_probed_limited_non_root_budgeted_and_fenced(overlay):
    docs = render(f"overlays/{overlay}")
    budgets, policies = by_kind(docs, "PodDisruptionBudget"), by_kind(docs, "NetworkPolicy")
    deployments = by_kind(docs, "Deployment")
    assert set(deployments) >= {*listed_services(), "gateway", "otel-collector"}
    for name, deployment in deployments.items():
        pod = pod_spec(deployment)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0, name
        assert pod["automountServiceAccountToken"] is False, name
        for c in pod["containers"] + pod.get("initContainers", []):
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, (name, c["name"])
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, (name, c["name"])
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"], (name, c["name"])
            limits, requests = c["resources"]["limits"], c["resources"]["requests"]
            assert {"cpu", "memory"} <= set(limits) and {"cpu", "memory"} <= set(requests), (name, c["name"])
        for c in pod["containers"]:
            assert c["readinessProbe"] != c["livenessProbe"], name
            sleep = c["lifecycle"]["preStop"]["exec"]["command"]
            assert sleep[0] == "sleep" and 0 < int(sleep[1]) < pod["terminationGracePeriodSeconds"], name
        (budget,) = [b for b in budgets.values() if selects(b["spec"]["selector"], labels)]
        assert budget["spec"].get("maxUnavailable") == 1 or budget["spec"].get("minAvailable", 0) >= 1, name
        own = [p for p in policies.values() if p["spec"]["podSelector"] == {"matchLabels": {
            "app.kubernetes.io/name": labels["app.kubernetes.io/name"]}}]
        assert own and set(own[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}, f"{name}: no NetworkPolicy"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_and_the_gateway_autoscale_on_cpu(overlay):
    docs = render(f"overlays/{overlay}")
    scalers = by_kind(docs, "HorizontalPodAutoscaler")
    for name in [*listed_services(), "gateway"]:
        hpa = scalers[name]["spec"]
        assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]
        assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
