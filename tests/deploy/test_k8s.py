"""k8s/: render base and overlays with kustomize, validate against the Kubernetes schemas (strict),
and check the properties the deployment promises (probes, limits, non-root, read-only root FS, ...)."""

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
import yaml

TARGETS = ["base", "overlays/dev", "overlays/prod"]
K8S_VERSIONS = ["1.29.0", "1.34.0"]
Runner = Callable[..., CompletedProcess[str]]
Docs = list[dict[str, Any]]


@pytest.fixture(scope="module")
def rendered(k8s_render: Callable[[str], Docs]) -> dict[str, Docs]:
    return {t: k8s_render(t) for t in TARGETS}


def by_kind(docs: Docs, kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_specs(docs: Docs) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for d in docs:
        kind, name = d["kind"], d["metadata"]["name"]
        if kind in {"Deployment", "StatefulSet", "Job"}:
            out.append((f"{kind}/{name}", d["spec"]["template"]["spec"]))
        elif kind == "CronJob":
            out.append((f"{kind}/{name}", d["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
    return out


def _normalised(docs: Docs) -> dict[tuple[str, str, str], Any]:
    out = {}
    for d in docs:
        d = json.loads(json.dumps(d))
        if d["kind"] == "Secret":  # kubectl wraps long base64 strings; whitespace is not data
            d["data"] = {k: "".join(v.split()) for k, v in d.get("data", {}).items()}
        out[(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])] = d
    return out


@pytest.mark.parametrize("target", TARGETS)
def test_fallback_renderer_matches_kubectl_kustomize(
    target: str, root: Path, runner: Runner, which: Callable[[str], str | None], kustomize_lite: Any
) -> None:
    """kustomize_lite (used only where kubectl is absent) renders exactly what kubectl does."""
    kubectl = which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl absent (Debian 12 packages none with kustomize v5): nothing to compare")
    res = runner([kubectl, "kustomize", str(root / "k8s" / target)], timeout=60)
    assert res.returncode == 0, res.stderr
    expected = _normalised([d for d in yaml.safe_load_all(res.stdout) if d])
    got = _normalised(kustomize_lite.render_kustomization(root / "k8s" / target))
    assert got.keys() == expected.keys()
    for key in expected:
        assert got[key] == expected[key], key


def kubernetes_validate(
    docs: Docs, version: str, tmp_path: Path, tool: Callable[[str, str], str], runner: Runner
) -> CompletedProcess[str]:
    """``kubernetes-validate --strict`` of ``docs`` against Kubernetes ``version``."""
    exe = tool("kubernetes-validate", "pip install kubernetes-validate")
    out = tmp_path / "manifests.yaml"
    out.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return runner([exe, "--strict", "-k", version, "--quiet", str(out)])


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_rendered_manifests_pass_kubernetes_validate_strict(
    target: str,
    version: str,
    rendered: dict[str, Docs],
    tmp_path: Path,
    tool: Callable[[str, str], str],
    runner: Runner,
) -> None:
    res = kubernetes_validate(rendered[target], version, tmp_path, tool, runner)
    assert res.returncode == 0, res.stdout + res.stderr


def test_kubernetes_validate_rejects_an_unknown_field(
    rendered: dict[str, Docs],
    tmp_path: Path,
    tool: Callable[[str, str], str],
    runner: Runner,
) -> None:
    """Negative control: --strict really rejects what a cluster would."""
    dep = json.loads(json.dumps(by_kind(rendered["overlays/prod"], "Deployment")["p1-ingest"]))
    dep["spec"]["template"]["spec"]["containers"][0]["livenessProb"] = {}
    assert kubernetes_validate([dep], K8S_VERSIONS[-1], tmp_path, tool, runner).returncode != 0


@pytest.mark.parametrize("target", TARGETS)
def test_every_workload_is_hardened_and_bounded(target: str, rendered: dict[str, Docs]) -> None:
    specs = pod_specs(rendered[target])
    assert specs
    for where, spec in specs:
        psc = spec.get("securityContext", {})
        assert psc.get("runAsNonRoot") is True, where
        assert psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        assert spec.get("automountServiceAccountToken") is False, where
        for c in spec["containers"]:
            sc = c.get("securityContext", {})
            assert sc.get("readOnlyRootFilesystem") is True, (where, c["name"])
            assert sc.get("allowPrivilegeEscalation") is False, (where, c["name"])
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], (where, c["name"])
            res = c.get("resources", {})
            assert {"cpu", "memory"} <= set(res.get("requests", {})), (where, c["name"])
            assert {"cpu", "memory"} <= set(res.get("limits", {})), (where, c["name"])


@pytest.mark.parametrize("target", TARGETS)
def test_services_have_probes_autoscaling_budgets_and_routes(target: str, rendered: dict[str, Docs]) -> None:
    docs = rendered[target]
    deployments = by_kind(docs, "Deployment")
    assert set(deployments) == {"p1-ingest", "p1-query", "p1-notify"}
    ports = {"p1-ingest": 8001, "p1-query": 8002, "p1-notify": 8003}
    for name, dep in deployments.items():
        c = dep["spec"]["template"]["spec"]["containers"][0]
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["ports"][0]["containerPort"] == ports[name]
        assert c["args"][0] == ("run" if name == "p1-notify" else "serve")
        env = {e["name"] for e in c["env"]}
        assert {"DATABASE_URL", "REDIS_URL"} <= env
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    # notify runs one replica (a second is safe, not faster): no autoscaler, no disruption budget
    scaled = set(deployments) - {"p1-notify"}
    assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas.values()} == scaled
    for h in hpas.values():
        assert h["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert set(by_kind(docs, "PodDisruptionBudget")) == scaled
    services = by_kind(docs, "Service")
    assert {"p1-ingest", "p1-query"} <= set(services)
    ingresses = by_kind(docs, "Ingress")
    ingress = ingresses["p1"]
    paths = {p["path"]: p["backend"]["service"]["name"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert paths == {"/v1/samples": "p1-ingest", "/": "p1-query"}
    assert ingress["spec"]["tls"]
    # /metrics is denied to every client at the ingress, for the same host
    deny = ingresses["p1-deny-metrics"]
    assert deny["metadata"]["annotations"]["nginx.ingress.kubernetes.io/denylist-source-range"] == (
        "0.0.0.0/0,::/0"
    )
    assert [p["path"] for p in deny["spec"]["rules"][0]["http"]["paths"]] == ["/metrics"]
    assert deny["spec"]["rules"][0]["host"] == ingress["spec"]["rules"][0]["host"]
    job = by_kind(docs, "Job")["p1-migrate"]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    cron = by_kind(docs, "CronJob")["p1-maintain"]
    assert cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["maintain"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"


@pytest.mark.parametrize("target", TARGETS)
def test_tokens_come_from_the_secret_mounted_as_files_that_update(
    target: str, rendered: dict[str, Docs]
) -> None:
    """Rotating a token is a change of the Secret: mounted as a volume (never by subPath, which gets no
    updates) and named by *_TOKENS_FILE, the services re-read it without a restart."""
    deployments = by_kind(rendered[target], "Deployment")
    for name, variable in (("p1-ingest", "DEVICE_TOKENS"), ("p1-query", "READ_TOKENS")):
        spec = deployments[name]["spec"]["template"]["spec"]
        c = spec["containers"][0]
        env = {e["name"]: e for e in c["env"]}
        assert variable not in env, "the variable and the file together refuse to start"
        mount = next(m for m in c["volumeMounts"] if m["name"] == "tokens")
        assert "subPath" not in mount
        assert mount["readOnly"] is True
        assert env[f"{variable}_FILE"]["value"] == f"{mount['mountPath']}/{variable}"
        volume = next(v for v in spec["volumes"] if v["name"] == "tokens")["secret"]
        assert volume["secretName"] == "p1-secrets"
        assert volume["items"] == [{"key": variable, "path": variable}]
        assert volume["defaultMode"] == 0o440
        assert spec["securityContext"]["fsGroup"] == 10001  # group-readable by the service's user


@pytest.mark.parametrize("target", TARGETS)
def test_a_daily_backup_onto_its_own_volume(target: str, rendered: dict[str, Docs]) -> None:
    docs = rendered[target]
    cron = by_kind(docs, "CronJob")["p1-backup"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    spec = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    c = spec["containers"][0]
    assert (
        c["image"]
        == by_kind(docs, "Deployment")["p1-ingest"]["spec"]["template"]["spec"]["containers"][0]["image"]
    )
    assert c["args"][0] == "backup"
    assert c["args"][1:3] == ["--keep-days", "$(BACKUP_KEEP_DAYS)"]  # the ConfigMap's value
    config = by_kind(docs, "ConfigMap")["p1-config"]["data"]
    assert config["BACKUP_KEEP_DAYS"] == "14"
    assert {"configMapRef": {"name": "p1-config"}} in c["envFrom"]
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == c["args"][-1])
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["persistentVolumeClaim"]["claimName"] in by_kind(docs, "PersistentVolumeClaim")
    assert spec["securityContext"]["fsGroup"] == 10001


@pytest.mark.parametrize("target", TARGETS)
def test_network_policies_deny_by_default_and_open_only_the_needed_paths(
    target: str, rendered: dict[str, Docs]
) -> None:
    pols = by_kind(rendered[target], "NetworkPolicy")
    deny = pols["p1-default-deny"]["spec"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny
    assert "egress" not in deny
    for name, port in (("p1-ingest-from-ingress", 8001), ("p1-query-from-ingress", 8002)):
        rule = pols[name]["spec"]["ingress"][0]
        assert [p["port"] for p in rule["ports"]] == [port]
    egress_ports = {
        p["port"] for r in pols["p1-services-to-datastores"]["spec"]["egress"] for p in r["ports"]
    }
    assert egress_ports == {5432, 6379}
    # every pod that talks to the database carries the label the policies select on
    for where, _spec in pod_specs(rendered[target]):
        if where.split("/")[1].startswith(
            ("p1-ingest", "p1-query", "p1-migrate", "p1-maintain", "p1-backup")
        ):
            doc = next(d for d in rendered[target] if f"{d['kind']}/{d['metadata']['name']}" == where)
            tmpl = (
                doc["spec"]["jobTemplate"]["spec"]["template"]
                if doc["kind"] == "CronJob"
                else doc["spec"]["template"]
            )
            assert tmpl["metadata"]["labels"].get("p1-telemetry/db-client") == "true", where


def test_dev_overlay_runs_its_own_datastores(rendered: dict[str, Docs]) -> None:
    docs = rendered["overlays/dev"]
    sts = by_kind(docs, "StatefulSet")
    assert sts["p1-timescaledb"]["spec"]["template"]["spec"]["containers"][0]["image"].startswith(
        "timescale/timescaledb:"
    )
    assert "p1-redis" in sts
    secret = by_kind(docs, "Secret")["p1-secrets"]
    keys = set(secret.get("data", {})) | set(secret.get("stringData", {}))
    assert {"DATABASE_URL", "REDIS_URL", "DEVICE_TOKENS", "READ_TOKENS"} <= keys
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {"p1-dev"}
    # the DATABASE_URL host is the in-cluster Service
    assert "p1-timescaledb" in by_kind(docs, "Service")


def test_prod_overlay_uses_external_datastores_and_no_committed_secret(
    rendered: dict[str, Docs],
) -> None:
    docs = rendered["overlays/prod"]
    assert not by_kind(docs, "StatefulSet")
    assert not by_kind(docs, "Secret"), "production secrets are created in the cluster, not in git"
    query = by_kind(docs, "Deployment")["p1-query"]["spec"]["template"]["spec"]["containers"][0]
    db = next(e for e in query["env"] if e["name"] == "DATABASE_URL")
    assert db["valueFrom"]["secretKeyRef"]["key"] == "QUERY_DATABASE_URL"
    for dep in by_kind(docs, "Deployment").values():
        image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
        assert "/" in image, image
        assert ":" in image, image
    assert "p1-services-to-external-datastores" in by_kind(docs, "NetworkPolicy")


@pytest.mark.parametrize("target", TARGETS)
def test_servicemonitor_and_prometheusrule(target: str, rendered: dict[str, Docs], root: Path) -> None:
    docs = rendered[target]
    sm = by_kind(docs, "ServiceMonitor")["p1-telemetry"]
    ep = sm["spec"]["endpoints"][0]
    assert ep["path"] == "/metrics"
    assert ep["honorLabels"] is True
    selected = [
        s
        for s in by_kind(docs, "Service").values()
        if s["metadata"].get("labels", {}).get("app.kubernetes.io/component")
        in sm["spec"]["selector"]["matchExpressions"][0]["values"]
    ]
    assert {s["metadata"]["name"] for s in selected} == {"p1-ingest", "p1-query", "p1-notify"}
    assert all(ep["port"] in {p["name"] for p in s["spec"]["ports"]} for s in selected)
    rule = by_kind(docs, "PrometheusRule")["p1-telemetry"]
    source = yaml.safe_load((root / "deploy/prometheus/rules/p1-alerts.yml").read_text())
    assert rule["spec"]["groups"] == source["groups"], (
        "k8s/base/prometheusrule.yaml is stale: run deploy/prometheus/gen-prometheusrule.py"
    )


def test_dev_redis_evicts_only_keys_with_a_ttl(rendered: dict[str, Docs]) -> None:
    """As compose.yaml: a bounded Redis that evicts only cache keys (TTL), never p1:latest:* (no TTL)."""
    container = by_kind(rendered["overlays/dev"], "StatefulSet")["p1-redis"]["spec"]["template"]["spec"][
        "containers"
    ][0]
    args = container["args"]
    settings = dict(zip(args[0::2], args[1::2], strict=False))
    assert settings["--maxmemory-policy"] in {"volatile-lru", "volatile-ttl"}
    assert settings["--maxmemory"].endswith(("mb", "gb"))
