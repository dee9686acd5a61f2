"""deploy/grafana: the dashboard loads, every panel queries a known metric or table, and every SQL
query runs against a database migrated by `p1-ingest migrate`'s own migrations."""

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

DASHBOARD = "deploy/grafana/dashboards/p1-telemetry.json"
SQL_WORDS = {"select", "lateral", "unnest", "generate_series"}


def dashboard(root: Path) -> dict[str, Any]:
    data = json.loads((root / DASHBOARD).read_text())
    assert isinstance(data, dict)
    return data


def targets(root: Path) -> list[tuple[str, dict[str, Any]]]:
    return [
        (p["title"], t) for p in dashboard(root)["panels"] if p["type"] != "row" for t in p.get("targets", [])
    ]


def test_dashboard_structure(root: Path) -> None:
    d = dashboard(root)
    assert d["uid"] == "p1-telemetry"
    assert d["title"]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for p in d["panels"]:
        assert {"x", "y", "w", "h"} <= set(p["gridPos"])
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        if p["type"] != "row":
            assert p["targets"], p["title"]
    titles = " ".join(p["title"].lower() for p in d["panels"])
    for topic in ("live power", "energy today", "capacity", "spool", "upload", "latency"):
        assert topic in titles, topic


def test_datasources_are_provisioned(root: Path) -> None:
    prov = yaml.safe_load((root / "deploy/grafana/provisioning/datasources/datasources.yml").read_text())
    uids = {ds["uid"]: ds["type"] for ds in prov["datasources"]}
    assert uids["p1-postgres"] == "grafana-postgresql-datasource"
    assert uids["p1-prometheus"] == "prometheus"
    for title, t in targets(root):
        assert t["datasource"]["uid"] in uids, title
    boards = yaml.safe_load((root / "deploy/grafana/provisioning/dashboards/dashboards.yml").read_text())
    assert boards["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"


def test_prometheus_panels_name_known_metrics(
    root: Path, known_metrics: frozenset[str], metric_base: Callable[[str], str]
) -> None:
    seen = set()
    for title, t in targets(root):
        if t["datasource"]["uid"] != "p1-prometheus":
            continue
        names = set(re.findall(r"\b(p1_[a-z0-9_]+)", t["expr"]))
        assert names, f"{title}: no p1_ metric in {t['expr']}"
        for n in names:
            assert metric_base(n) in known_metrics, f"{title}: unknown metric {n}"
            seen.add(metric_base(n))
    assert {"p1_edge_spool_depth", "p1_edge_upload_batches_total", "p1_http_request_duration_seconds"} <= seen


def sql_tables(sql: str) -> set[str]:
    sql = re.sub(r"(?i)\bEXTRACT\s*\((?:[^()]|\([^()]*\))*\)", "", sql)  # EXTRACT(x FROM y)
    ctes = set(re.findall(r"(?i)\b(\w+)\s+AS\s*\(", sql))
    found = set(re.findall(r"(?i)\b(?:FROM|JOIN)\s+([a-z_][a-z0-9_]*)", sql))
    return {t.lower() for t in found} - {c.lower() for c in ctes} - SQL_WORDS


def test_sql_panels_name_known_tables(root: Path) -> None:
    known = {"devices", "samples", "rollup_15m", "rollup_1h", "rollup_1d"}
    sql = [(title, t["rawSql"]) for title, t in targets(root) if "rawSql" in t]
    assert sql
    variables = [v["query"] for v in dashboard(root)["templating"]["list"]]
    for title, text in [*sql, *(("variable", v) for v in variables)]:
        tables = sql_tables(text)
        assert tables, f"{title}: no table"
        assert tables <= known, f"{title}: unknown tables {tables - known}"


def expand_grafana_macros(sql: str) -> str:
    sql = re.sub(
        r"\$__timeGroupAlias\((\w+),\s*\$__interval\)",
        r"to_timestamp(floor(extract(epoch from \1) / 60) * 60) AS time",
        sql,
    )
    sql = re.sub(r"\$__timeFilter\((\w+)\)", r"\1 BETWEEN now() - interval '6 hours' AND now()", sql)
    sql = sql.replace("$device", "meter-1")
    assert "$" not in sql, f"unexpanded macro in {sql}"
    return sql


async def test_sql_panels_run_on_the_migrated_schema(root: Path) -> None:
    """Each SQL query runs (no error) against the schema the migrations (p1_schema) create."""
    asyncpg = pytest.importorskip("asyncpg")
    testing_db = pytest.importorskip("p1_servicekit.testing_db")
    migrate_mod = pytest.importorskip("p1_schema.migrate")
    try:
        url = await testing_db.create_database(testing_db.pg_server_url(), prefix="p1_deploy")
    except OSError as exc:  # pragma: no cover - no PostgreSQL here
        pytest.skip(f"no PostgreSQL: {exc}")
    try:
        await migrate_mod.migrate(url)
        conn = await asyncpg.connect(url)
        try:
            have = {
                r["tablename"]
                for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            }
            missing = {"devices", "samples", "rollup_15m", "rollup_1h", "rollup_1d"} - have
            assert not missing, f"the migrations do not create {missing}"
            queries = [(title, t["rawSql"]) for title, t in targets(root) if "rawSql" in t]
            queries += [("variable", v["query"]) for v in dashboard(root)["templating"]["list"]]
            for title, sql in queries:
                try:
                    await conn.fetch(expand_grafana_macros(sql))
                except asyncpg.PostgresError as exc:
                    pytest.fail(f"{title}: {exc}\n{sql}")
        finally:
            await conn.close()
    finally:
        await testing_db.drop_database(url)
