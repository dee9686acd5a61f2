"""What the guides name exists: every file or folder (by its path, or a path ending in it), every `make`
target, every `p1-…` subcommand, every service a `docker compose` command names, every environment
variable (it must appear somewhere outside the guides themselves), and the placeholders and paths the
edge's instructions depend on."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from p1_servicekit.testing import console_script

GUIDES = ["README.md", "docs/deploy.md", "services/edge/README.md"]
TOP = ("deploy", "k8s", "libs", "services", "scripts", "tests", "docs", "bench", "vendor", ".ci")
# Paths a user makes (from an example) or that exist only on their machines, never in the repository.
USER_MADE = {
    "deploy/edge/.env",
    "p1-telemetry/",
    ".env",
    ".demo/",
    "deploy/edge/ca/root.crt",
    ".fuzz/artifacts/",
    "deploy/tokens/device_tokens",  # token files: git ignores them (docs/deploy.md, "Tokens")
    "deploy/tokens/read_tokens",
}
NOT_PATHS = re.compile(r"(linux|arm)/|Europe/|^\d|/\d|^[a-z]+/[a-z]+$")  # platforms, zones, types, 1/2, y/n
BALENA_IMAGE = "registry.example.org/you/p1-edge:0.1.0"


def tracked(root: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def expand(token: str) -> list[str]:
    """`services/{ingest,query}/Dockerfile` → each spelling."""
    m = re.search(r"\{([^{}]+)\}", token)
    if not m:
        return [token]
    return [x for part in m.group(1).split(",") for x in expand(token[: m.start()] + part + token[m.end() :])]


def named_paths(text: str) -> set[str]:
    found = set()
    for token in re.findall(r"`([\w.{},/-]+)`", text):
        looks_like_file = re.search(r"\.(ya?ml|md|sh|py|json|toml|example|sql|disabled|lock|gz)$", token)
        if token.startswith("/") or NOT_PATHS.search(token):  # a container's or a URL's path
            continue
        if token.startswith(TOP) or looks_like_file or token.endswith("/"):
            found.update(expand(token))
    return found


@pytest.mark.parametrize("guide", GUIDES)
def test_every_file_a_guide_names_exists(guide: str, root: Path) -> None:
    files = tracked(root)
    folders = {str(Path(f).parent) + "/" for f in files} | {
        "/".join(f.split("/")[:i]) + "/" for f in files for i in range(1, f.count("/") + 1)
    }
    known = set(files) | folders | {f.rstrip("/") for f in folders}
    missing = []
    for path in sorted(named_paths((root / guide).read_text()) - USER_MADE):
        if path not in known and not any(k.endswith("/" + path) for k in known):
            missing.append(path)
    assert missing == [], f"{guide} names what the repository does not have"


def test_every_make_target_a_guide_names_exists(root: Path) -> None:
    targets = set(re.findall(r"^([a-z][\w-]*):", (root / "Makefile").read_text(), re.MULTILINE))
    for guide in GUIDES:
        named = set(re.findall(r"`make ([a-z][\w-]*)", (root / guide).read_text()))
        named |= set(re.findall(r"^make ([a-z][\w-]*)", (root / guide).read_text(), re.MULTILINE))
        assert named <= targets, f"{guide}: no such make target {sorted(named - targets)}"


def subcommands(script: str) -> set[str]:
    done = subprocess.run([console_script(script), "--help"], capture_output=True, text=True, timeout=60)
    m = re.search(r"\{([\w,-]+)\}", done.stdout)
    assert m, done.stdout
    return set(m.group(1).split(","))


def test_every_p1_command_a_guide_names_exists(root: Path) -> None:
    known = {s: subcommands(f"p1-{s}") for s in ("ingest", "query", "edge", "notify")}
    for guide in GUIDES:
        text = (root / guide).read_text()
        for script, sub in set(re.findall(r"\bp1-(ingest|query|edge|notify) ([a-z]+)\b", text)):
            if sub not in {
                "is",
                "and",
                "or",
                "the",
                "from",
                "to",
                "image",
                "images",
                "on",
                "of",
                "process",
                "processes",
            }:
                assert sub in known[script], f"{guide}: p1-{script} has no command {sub!r}"
        # `docker compose -f compose.edge.yaml run --rm edge pair`: the image's entry point is p1-edge
        for sub in re.findall(r"compose\.edge\.yaml run --rm edge ([a-z]+)", text):
            assert sub in known["edge"], f"{guide}: p1-edge has no command {sub!r}"


def test_every_compose_service_a_guide_names_exists(root: Path) -> None:
    server = set(yaml.safe_load((root / "compose.yaml").read_text())["services"])
    edge = set(yaml.safe_load((root / "compose.edge.yaml").read_text())["services"])
    verbs = r"(?:run --rm|exec|cp|up -d|logs|restart|stop|pull)"
    for guide in GUIDES:
        text = (root / guide).read_text()
        for file, service in re.findall(rf"docker compose(?: -f (\S+))? {verbs} ([a-z][\w-]*)", text):
            assert service in (edge if file == "compose.edge.yaml" else server), (
                f"{guide}: no service {service}"
            )
        for services in re.findall(r"docker compose (?:up -d|restart|stop|pull) ((?:[a-z][\w-]* ?)+)", text):
            assert set(services.split()) <= server, f"{guide}: {services}"


def test_every_variable_a_guide_names_is_used_somewhere(root: Path) -> None:
    files = [f for f in tracked(root) if f not in GUIDES and not f.endswith((".lock", ".tar.gz", ".sha256"))]
    corpus = "\n".join((root / f).read_text(errors="replace") for f in files if (root / f).is_file())
    for guide in GUIDES:
        named = set(re.findall(r"`([A-Z][A-Z0-9]*_[A-Z0-9_]+\*?)", (root / guide).read_text()))
        # `GRAFANA_ADMIN_*`: a family of variables, some of which must exist
        unknown = sorted(
            v
            for v in named
            if not re.search(rf"\b{v.rstrip('*')}" + ("" if v.endswith("*") else r"\b"), corpus)
        )
        assert unknown == [], f"{guide} names variables nothing else knows"


def test_the_edge_instructions_match_the_files(root: Path) -> None:
    deploy = (root / "docs/deploy.md").read_text()
    # balena: the placeholder the guide tells you to replace is the one in the file; no published image
    balena = yaml.safe_load((root / "deploy/edge/docker-compose.yml").read_text())["services"]["edge"]
    assert balena["image"] == BALENA_IMAGE
    assert f"`{BALENA_IMAGE}`" in deploy
    assert "we publish no images" in deploy.lower()
    # Caddy's internal root: where the caddy service keeps its data, and where the edge looks for it
    caddy = yaml.safe_load((root / "compose.yaml").read_text())["services"]["caddy"]
    assert "caddy_data:/data" in caddy["volumes"]
    assert "docker compose cp caddy:/data/caddy/pki/authorities/local/root.crt caddy-root.crt" in deploy
    edge = yaml.safe_load((root / "compose.edge.yaml").read_text())["services"]["edge"]
    assert "./deploy/edge/ca:/etc/p1/ca:ro" in edge["volumes"]
    assert (root / "deploy/edge/ca").is_dir()
    assert "deploy/edge/ca/root.crt" in deploy
    assert "CA_BUNDLE=/etc/p1/ca/root.crt" in deploy


def test_the_checks_find_what_is_missing(root: Path, tmp_path: Path) -> None:
    """Negative controls: an invented file, make target and variable are found."""
    text = "see `deploy/nothing/here.yaml`, run `make nothing-here`, set `P1_NO_SUCH_SETTING`"
    assert "deploy/nothing/here.yaml" in named_paths(text)
    assert expand("services/{ingest,query}/Dockerfile") == [
        "services/ingest/Dockerfile",
        "services/query/Dockerfile",
    ]
    assert "make nothing-here" not in (root / "Makefile").read_text()
    corpus = "\n".join((root / f).read_text(errors="replace") for f in ("compose.yaml", ".env.example"))
    assert not re.search(r"\bP1_NO_SUCH_SETTING\b", corpus)
