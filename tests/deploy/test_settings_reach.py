"""Every variable of README's configuration tables reaches each process that reads it, so a setting is never
silently ignored: in compose.yaml passed through from .env under its own name, in Kubernetes from the
ConfigMap p1-config (envFrom) or the Secret p1-secrets; .env.example and the ConfigMap list every tunable at
the services' own default; the edge's example env file lists the edge's variables.

Which process reads a variable is what its settings class says (a field ``max_power_w`` is ``MAX_POWER_W``),
plus ``PGPASSWORD``, which the PostgreSQL driver reads for every process that has a ``DATABASE_URL``."""

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter
from pydantic_settings import BaseSettings

from p1_ingest.settings import IngestSettings, IntegritySettings, MaintainSettings
from p1_notify.settings import NotifySettings
from p1_query.settings import QuerySettings
from p1_servicekit.settings import ServiceSettings

Docs = list[dict[str, Any]]
# compose service / k8s workload → the settings its command reads (the command is checked below)
COMMANDS: dict[str, tuple[type[BaseSettings], str]] = {
    "ingest": (IngestSettings, "serve"),
    "query": (QuerySettings, "serve"),
    "migrate": (IntegritySettings, "migrate"),
    "maintain": (MaintainSettings, "maintain"),
    "backup": (ServiceSettings, "backup"),
    "notify": (NotifySettings, "run"),
}
WORKLOADS = {"Deployment/p1-ingest": "ingest", "Deployment/p1-query": "query", "Job/p1-migrate": "migrate"}
WORKLOADS |= {"Deployment/p1-notify": "notify"}
WORKLOADS |= {"CronJob/p1-maintain": "maintain", "CronJob/p1-backup": "backup"}
SECRETS = {"DATABASE_URL", "PGPASSWORD", "REDIS_URL"}
# A token table is the variable or a file of it: either one reaching a process is its table reaching it
# (k8s mounts the Secret as files and sets the *_FILE variable; compose passes both from .env).
PAIRS = {"DEVICE_TOKENS": "DEVICE_TOKENS_FILE", "READ_TOKENS": "READ_TOKENS_FILE"}
PAIRS |= {file: table for table, file in PAIRS.items()}
# Documented variables that are a command's argument rather than a setting: service → (variable, option).
ARGUMENTS = {"BACKUP_KEEP_DAYS": ("backup", "--keep-days")}
# compose runs the database and Redis itself: these are built from its own parts, not from .env as such
COMPOSE_PARTS = {
    "DATABASE_URL": "postgresql://${POSTGRES_USER:-p1}@db:5432/${POSTGRES_DB:-p1}",
    "PGPASSWORD": "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}",
    "REDIS_URL": "redis://redis:6379/0",
}
SERVER_TABLES = ("every process (ingest, query, edge)", "ingest and query", "notify")


def readme_tables(root: Path) -> dict[str, list[str]]:
    """README's configuration tables: their bold title → the variables of their first column."""
    tables: dict[str, list[str]] = {}
    title = None
    for line in (root / "README.md").read_text().splitlines():
        if m := re.fullmatch(r"\*\*(.+)\*\*", line.strip()):
            title = m.group(1)
        elif title and line.startswith("| `"):
            first = line.split("|")[1]
            tables.setdefault(title, []).extend(re.findall(r"`([A-Z][A-Z0-9_]+)`", first))
        elif title and tables.get(title) and not line.startswith("|"):
            title = None
    return tables


def reads(settings: type[BaseSettings], variable: str) -> bool:
    fields = settings.model_fields
    return variable.lower() in fields or (variable == "PGPASSWORD" and "database_url" in fields)


@pytest.fixture(scope="module")
def documented(root: Path) -> list[str]:
    tables = readme_tables(root)
    assert set(SERVER_TABLES) | {"edge"} <= set(tables), sorted(tables)
    return [v for t in SERVER_TABLES for v in tables[t]]


def test_every_documented_variable_is_read_and_every_setting_documented(documented: list[str]) -> None:
    for variable in documented:
        read = any(reads(s, variable) for s, _ in COMMANDS.values()) or variable in ARGUMENTS
        assert read, f"README documents {variable}: no one reads it"
    fields = {f.upper() for s, _ in COMMANDS.values() for f in s.model_fields}
    assert fields <= set(documented), (
        f"settings missing from README's tables: {sorted(fields - set(documented))}"
    )


def unreached_in_compose(services: dict[str, Any], documented: list[str]) -> list[str]:
    """``service: VARIABLE`` for each documented variable a compose service reads but is not handed."""
    missing = []
    for name, (settings, _) in COMMANDS.items():
        env = services[name].get("environment", {})
        for variable in (v for v in documented if reads(settings, v)):
            value = str(env.get(variable, ""))
            expected = COMPOSE_PARTS.get(variable)
            if (value != expected) if expected else not value.startswith(f"${{{variable}:"):
                missing.append(f"{name}: {variable}")
    for variable, (name, option) in ARGUMENTS.items():
        if f"{option} ${{{variable}:-" not in " ".join(services[name]["entrypoint"]):
            missing.append(f"{name}: {variable}")
    return missing


def test_compose_hands_every_documented_variable_to_each_service_that_reads_it(
    root: Path, documented: list[str]
) -> None:
    services = yaml.safe_load((root / "compose.yaml").read_text())["services"]
    for name, (_, command) in COMMANDS.items():  # the settings above are the ones these commands read
        argv = services[name].get("command") or services[name]["entrypoint"]
        assert command in " ".join(argv), name
    assert unreached_in_compose(services, documented) == []
    # negative control: a variable dropped from one service is found
    del services["query"]["environment"]["CAPACITY_PRICE_EUR_PER_KW_YEAR"]
    services["ingest"]["environment"]["RATE_LIMIT_BURST"] = "100"  # fixed: .env could not change it
    assert unreached_in_compose(services, documented) == [
        "ingest: RATE_LIMIT_BURST",
        "query: CAPACITY_PRICE_EUR_PER_KW_YEAR",
    ]


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
    return list(spec["template"]["spec"]["containers"])


def unreached_in_k8s(docs: Docs, documented: list[str]) -> list[str]:
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "p1-config")
    missing = []
    for doc in docs:
        name = WORKLOADS.get(f"{doc['kind']}/{doc['metadata']['name']}")
        if name is None:
            continue
        settings, command = COMMANDS[name]
        (c,) = containers(doc)
        assert c["args"][0] == command, name
        env = {e["name"]: e for e in c.get("env", [])}
        secret = {
            n
            for n, e in env.items()
            if e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "p1-secrets"
        }
        from_config = any(e.get("configMapRef", {}).get("name") == "p1-config" for e in c.get("envFrom", []))
        for variable in (v for v in documented if reads(settings, v)):
            if variable in SECRETS:
                ok = variable in secret
            elif variable in PAIRS:
                ok = variable in env or PAIRS[variable] in env
            else:
                ok = variable in env or (from_config and variable in config["data"])
            if not ok:
                missing.append(f"{name}: {variable}")
        for variable, (arg_of, option) in ARGUMENTS.items():
            if arg_of == name and not (
                f"{option} $({variable})" in " ".join(c["args"])
                and from_config
                and variable in config["data"]
            ):
                missing.append(f"{name}: {variable}")
    return missing


@pytest.mark.parametrize("target", ["base", "overlays/dev", "overlays/prod"])
def test_kubernetes_hands_every_documented_variable_to_each_workload_that_reads_it(
    target: str, k8s_render: Callable[[str], Docs], documented: list[str]
) -> None:
    docs = k8s_render(target)
    assert unreached_in_k8s(docs, documented) == []
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    del config["data"]["EXPORT_SEND_TIMEOUT_S"]  # negative control
    assert unreached_in_k8s(docs, documented) == ["query: EXPORT_SEND_TIMEOUT_S"]


def default_of(variable: str, root: Path) -> tuple[TypeAdapter[Any], Any]:
    """How a value of ``variable`` is read, and its default (a setting's; compose's for an argument)."""
    if variable in ARGUMENTS:
        m = re.search(rf"\$\{{{variable}:-([^}}]+)\}}", (root / "compose.yaml").read_text())
        assert m, variable
        return TypeAdapter(int), int(m.group(1))
    settings = next(s for s, _ in COMMANDS.values() if variable.lower() in s.model_fields)
    field = settings.model_fields[variable.lower()]
    return TypeAdapter(field.annotation), field.default


def test_env_example_and_the_configmap_list_every_tunable_at_its_default(
    root: Path, documented: list[str]
) -> None:
    lines = (root / ".env.example").read_text().splitlines()
    example = dict(m.groups() for line in lines if (m := re.fullmatch(r"# ([A-Z][A-Z0-9_]*)=(.*)", line)))
    config = yaml.safe_load((root / "k8s/base/configmap.yaml").read_text())["data"]
    tunables = [v for v in documented if v not in SECRETS and v not in PAIRS]
    assert sorted(example) == sorted(tunables)
    assert sorted(config) == sorted(tunables)
    for variable in tunables:
        adapter, default = default_of(variable, root)
        if default is None:  # unset: an empty variable is unset (docs/design.md §13)
            assert (example[variable], config[variable]) == ("", ""), variable
            continue
        assert adapter.validate_strings(example[variable]) == default, f".env.example: {variable}"
        assert adapter.validate_strings(config[variable]) == default, f"configmap.yaml: {variable}"


def test_the_edge_example_env_lists_every_edge_variable(root: Path) -> None:
    edge = readme_tables(root)["edge"]
    text = (root / "deploy/edge/edge.env.example").read_text()
    listed = set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]+)=", text, re.MULTILINE))
    compose = yaml.safe_load((root / "compose.edge.yaml").read_text())["services"]["edge"]
    assert compose["env_file"] == ["deploy/edge/.env"]  # every line of the filled-in file reaches the edge
    set_by_compose = set(compose["environment"])
    assert set(edge) - set_by_compose <= listed, (
        f"missing from edge.env.example: {sorted(set(edge) - set_by_compose - listed)}"
    )
    assert "METER_TZ" in listed
