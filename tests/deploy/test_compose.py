"""compose.yaml (server), compose.edge.yaml (Pi, Docker) and deploy/edge/docker-compose.yml (balena)."""

import re
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
import yaml

COMPOSE_FILES = ["compose.yaml", "compose.edge.yaml", "deploy/edge/docker-compose.yml"]
HINT = "pip install check-jsonschema"
Runner = Callable[..., CompletedProcess[str]]


def load(root: Path, rel: str) -> dict[str, Any]:
    data = yaml.safe_load((root / rel).read_text())
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("rel", COMPOSE_FILES)
def test_compose_file_matches_compose_spec(
    rel: str, root: Path, tool: Callable[[str, str], str], runner: Runner
) -> None:
    exe = tool("check-jsonschema", HINT)
    res = runner([exe, "--builtin-schema", "vendor.compose-spec", str(root / rel)])
    assert res.returncode == 0, res.stdout + res.stderr


def test_compose_spec_validator_rejects_a_broken_file(
    tmp_path: Path, root: Path, tool: Callable[[str, str], str], runner: Runner
) -> None:
    """Negative control: the validator really looks at service keys."""
    exe = tool("check-jsonschema", HINT)
    data = load(root, "compose.yaml")
    data["services"]["ingest"]["helthcheck"] = {"test": ["CMD", "true"]}
    bad = tmp_path / "compose.yaml"
    bad.write_text(yaml.safe_dump(data))
    res = runner([exe, "--builtin-schema", "vendor.compose-spec", str(bad)])
    assert res.returncode != 0, "a misspelt key must fail validation"


def test_server_stack_has_every_service_with_health_and_ordering(root: Path) -> None:
    services = load(root, "compose.yaml")["services"]
    assert set(services) >= {"db", "redis", "migrate", "ingest", "query", "caddy", "prometheus", "grafana"}
    assert services["db"]["image"].startswith("timescale/timescaledb:")
    for name, svc in services.items():
        if name in {"migrate", "maintain", "backup"}:
            continue
        assert "healthcheck" in svc, name
        assert not svc["healthcheck"].get("disable"), name
    # migrate runs once the database is healthy; the services start after it succeeded
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["migrate"]
    for name in ("ingest", "query"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["redis"]["condition"] == "service_healthy"
        hc = " ".join(services[name]["healthcheck"]["test"])
        assert "urllib" in hc
        assert "/readyz" in hc
        assert "curl" not in hc
        env = services[name]["environment"]
        assert {"DATABASE_URL", "REDIS_URL", "LOG_LEVEL"} <= set(env)
    for name, variable in (("ingest", "DEVICE_TOKENS"), ("query", "READ_TOKENS")):
        # the variable or its file, passed through; the service itself refuses neither and both
        assert services[name]["environment"][variable] == f"${{{variable}:-}}"
        assert services[name]["environment"][f"{variable}_FILE"] == f"${{{variable}_FILE:-}}"
    for name in ("caddy", "prometheus"):
        assert {d["condition"] for d in services[name]["depends_on"].values()} == {"service_healthy"}
    assert services["ingest"]["build"]["dockerfile"] == "services/ingest/Dockerfile"
    assert services["query"]["build"]["dockerfile"] == "services/query/Dockerfile"


def test_only_caddy_is_published_beyond_loopback(root: Path) -> None:
    services = load(root, "compose.yaml")["services"]
    for name, svc in services.items():
        for port in svc.get("ports", []):
            if name != "caddy":
                assert str(port).startswith("127.0.0.1:"), (name, port)


def test_mounted_config_files_exist(root: Path) -> None:
    for rel in ("compose.yaml",):
        for name, svc in load(root, rel)["services"].items():
            for vol in svc.get("volumes", []):
                src = str(vol).split(":", 1)[0]
                if src.startswith("./"):
                    assert (root / src).exists(), f"{name}: {src} missing"


def test_secrets_come_from_env_and_env_example_names_them_all(root: Path) -> None:
    text = (root / "compose.yaml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    used = set(re.findall(r"\$\{(\w+)", text))
    assert {"POSTGRES_PASSWORD", "GRAFANA_DB_PASSWORD", "GRAFANA_ADMIN_PASSWORD"} <= required
    lines = (root / ".env.example").read_text().splitlines()
    example = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    # a tunable is listed commented out at its default ("# NAME=default": test_settings_reach.py)
    tunables = dict(m.groups() for line in lines if (m := re.fullmatch(r"# ([A-Z][A-Z0-9_]*)=(.*)", line)))
    listed = set(example) | set(tunables)
    assert used <= listed, f"missing from .env.example: {sorted(used - listed)}"
    for key in required:
        assert "change-me" in example[key], f"{key} in .env.example must be a placeholder"
    # exactly one of each token pair set, and to a placeholder
    for variable in ("DEVICE_TOKENS", "READ_TOKENS"):
        assert "change-me" in example[variable]
        assert example[f"{variable}_FILE"] == ""
    assert ".env" in (root / ".gitignore").read_text().split()


def test_edge_compose_for_docker(root: Path) -> None:
    edge = load(root, "compose.edge.yaml")["services"]["edge"]
    assert edge["build"]["dockerfile"] == "services/edge/Dockerfile"
    assert edge["environment"]["METRICS_PORT"] == "9101"
    assert any(str(v).endswith(":/data") for v in edge["volumes"]), "the spool needs a volume"
    assert "urllib" in " ".join(edge["healthcheck"]["test"])


def test_edge_compose_for_balena_uses_only_what_balena_supports(root: Path) -> None:
    """balena's supervisor: compose 2.4 subset, no interpolation, no env_file, no bind mounts,
    build contexts only inside the project folder, depends_on only as a list."""
    rel = "deploy/edge/docker-compose.yml"
    text = (root / rel).read_text()
    data = load(root, rel)
    assert str(data["version"]).startswith("2")
    assert "${" not in text, "balena does not interpolate variables"
    allowed = {
        "build",
        "cap_add",
        "cap_drop",
        "command",
        "devices",
        "depends_on",
        "entrypoint",
        "environment",
        "expose",
        "extra_hosts",
        "healthcheck",
        "image",
        "labels",
        "network_mode",
        "networks",
        "ports",
        "privileged",
        "read_only",
        "restart",
        "security_opt",
        "stop_signal",
        "stop_grace_period",
        "tmpfs",
        "ulimits",
        "user",
        "volumes",
        "working_dir",
    }
    for name, svc in data["services"].items():
        assert set(svc) <= allowed, f"{name}: {sorted(set(svc) - allowed)} not supported by balena"
        for vol in svc.get("volumes", []):
            src = str(vol).split(":", 1)[0]
            assert not src.startswith((".", "/", "~")), f"{name}: bind mount {vol}"
            assert src in data.get("volumes", {}), f"{name}: named volume {src} not declared"
        assert isinstance(svc.get("depends_on", []), list)
        build = svc.get("build")
        if build is not None:
            ctx = build if isinstance(build, str) else build.get("context", ".")
            assert not str(ctx).startswith(("..", "/")), f"{name}: build context outside the folder"
    balena = yaml.safe_load((root / "deploy/edge/balena.yml").read_text())
    assert balena["type"] == "sw.application"
    assert balena["name"]
    assert balena["version"]
    names = {k for item in balena["data"]["applicationEnvironmentVariables"] for k in item}
    assert {"P1_HOST", "INGEST_URL", "DEVICE_TOKEN"} <= names
    assert {"raspberrypi4-64", "raspberrypi3"} <= set(balena["data"]["supportedDeviceTypes"])


def test_edge_env_example_lists_the_binding_edge_settings(root: Path) -> None:
    text = (root / "deploy/edge/edge.env.example").read_text()
    keys = {line.split("=", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}
    assert {
        "P1_HOST",
        "P1_API",
        "P1_TOKEN",
        "INGEST_URL",
        "DEVICE_TOKEN",
        "DEVICE_ID",
        "POLL_INTERVAL_S",
        "SPOOL_MAX_ROWS",
        "UPLOAD_BATCH_MAX",
        "CA_BUNDLE",
    } <= keys


def test_redis_evicts_only_keys_with_a_ttl(root: Path) -> None:
    """Cache keys all have a TTL and the latest readings (p1:latest:*) none: under volatile-lru a full
    Redis evicts the cache, never a device's latest reading (services/query cache.py)."""
    argv = load(root, "compose.yaml")["services"]["redis"]["command"]
    settings = dict(zip(argv[1::2], argv[2::2], strict=False))
    assert settings["--maxmemory-policy"] in {"volatile-lru", "volatile-ttl"}
    assert re.fullmatch(r"[0-9]+(mb|gb)", settings["--maxmemory"])


def test_token_files_are_mounted_as_a_directory_the_services_see_change(root: Path) -> None:
    """A single-file bind mount pins the file's inode: an editor that renames a new file over it would
    never reach the container. The directory is mounted, read-only, and kept out of git."""
    services = load(root, "compose.yaml")["services"]
    for name in ("ingest", "query"):
        assert "./deploy/tokens:/run/p1/tokens:ro" in services[name]["volumes"], name
    assert (root / "deploy/tokens").is_dir()
    assert (root / "deploy/tokens/.gitignore").read_text().splitlines()[1:] == ["*", "!.gitignore"]


def test_backup_service_keeps_daily_backups_on_a_volume(root: Path) -> None:
    data = load(root, "compose.yaml")
    backup, ingest = data["services"]["backup"], data["services"]["ingest"]
    assert backup["image"] == ingest["image"]
    assert backup["build"] == ingest["build"]
    assert "backups:/backups" in backup["volumes"]
    assert "backups" in data["volumes"]
    script = backup["entrypoint"][-1]
    assert "p1-ingest backup --keep-days ${BACKUP_KEEP_DAYS:-14} /backups" in script
    assert "sleep 86400" in script
    assert backup["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert backup["read_only"] is True
