"""One TimescaleDB pin: compose.yaml and the k8s dev overlay run the image of exactly the TimescaleDB
version and PostgreSQL major that CI builds from vendor/ and tests (scripts/timescaledb.sh)."""

import re
from pathlib import Path
from typing import Any

import yaml

SCRIPT = "scripts/timescaledb.sh"


def script_setting(root: Path, name: str) -> str:
    m = re.search(rf"^{name}=(\S+)$", (root / SCRIPT).read_text(), re.MULTILINE)
    assert m, f"{name} not set in {SCRIPT}"
    return m.group(1)


def images(doc: Any) -> list[str]:
    """Every timescale/timescaledb image a YAML document names."""
    if isinstance(doc, dict):
        found = [v for k, v in doc.items() if k == "image" and str(v).startswith("timescale/timescaledb:")]
        return found + [i for v in doc.values() for i in images(v)]
    if isinstance(doc, list):
        return [i for v in doc for i in images(v)]
    return []


def test_compose_and_k8s_run_what_ci_tests(root: Path) -> None:
    version = script_setting(root, "TIMESCALEDB_VERSION")
    major = script_setting(root, "DEPLOYED_PG_MAJOR")
    pinned = f"timescale/timescaledb:{version}-pg{major}"
    compose = images(yaml.safe_load((root / "compose.yaml").read_text()))
    k8s = [
        i
        for f in sorted((root / "k8s").rglob("*.yaml"))
        for d in yaml.safe_load_all(f.read_text())
        for i in images(d)
    ]
    assert compose == [pinned]
    assert k8s == [pinned]
    # The vendored source is that version, and the deployment guide names that image.
    assert (root / f"vendor/timescaledb/timescaledb-{version}.tar.gz").is_file()
    deploy = (root / "docs/deploy.md").read_text()
    assert pinned in deploy
    assert set(re.findall(r"timescale/timescaledb:[\w.-]+", deploy)) == {pinned}


def test_the_pin_check_sees_a_drifted_image(root: Path) -> None:
    """Negative control: a k8s document with another tag is found."""
    doc = {"spec": {"template": {"spec": {"containers": [{"image": "timescale/timescaledb:2.17.2-pg16"}]}}}}
    assert images(doc) == ["timescale/timescaledb:2.17.2-pg16"]
