"""The architecture, checked on the source: ingest and query share only the contract and the schema, the
schema library depends on no service, and the edge (and the config library it shares with the services)
carries none of the server side.

Every ``.py`` file of each area is parsed (ast) and all its imports collected: ``import x``,
``from x import y``, and the string given to ``importlib.import_module`` or ``pytest.importorskip``.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# (what, the files, the top-level packages they must not import)
RULES = [
    ("query and its tests", ["services/query"], {"p1_ingest", "p1_notify"}),
    ("the query benchmark", ["bench/query.py"], {"p1_ingest"}),
    ("ingest", ["services/ingest/src"], {"p1_query", "p1_notify"}),
    # notify follows what ingest publishes (p1_schema's layout) and shares only peakguard with query.
    ("notify", ["services/notify/src"], {"p1_ingest", "p1_query", "p1_edge"}),
    ("the schema library", ["libs/schema"], {"p1_ingest", "p1_query", "p1_edge", "p1_notify"}),
    # The running quarter and the warning rule, shared by query and notify: no service, no web framework.
    (
        "the peakguard library",
        ["libs/peakguard"],
        {"p1_ingest", "p1_query", "p1_edge", "p1_notify", "p1_servicekit", "fastapi", "uvicorn"},
    ),
    ("the edge", ["services/edge/src"], {"fastapi", "asyncpg", "uvicorn", "p1_servicekit", "p1_schema"}),
    # p1_config is what the edge shares with the services: none of the server side either.
    (
        "the config library",
        ["libs/config/src"],
        {"fastapi", "asyncpg", "uvicorn", "redis", "p1_servicekit", "p1_schema"},
    ),
]
_DYNAMIC = {"import_module", "importorskip"}


def python_files(parts: list[str]) -> Iterator[Path]:
    for part in parts:
        path = ROOT / part
        if path.is_file():
            yield path
        else:
            yield from (p for p in sorted(path.rglob("*.py")) if ".venv" not in p.parts)


def imported(source: str) -> Iterator[tuple[int, str]]:
    """(line, module) of every absolute import in ``source``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in _DYNAMIC and isinstance(node.args[0].value, str):
                yield node.lineno, node.args[0].value


def violations(parts: list[str], forbidden: set[str]) -> list[str]:
    found = []
    for path in python_files(parts):
        for line, module in imported(path.read_text(encoding="utf-8")):
            if module.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(ROOT)}:{line}: {module}")
    return found


@pytest.mark.parametrize(("what", "parts", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_no_forbidden_import(what: str, parts: list[str], forbidden: set[str]) -> None:
    files = list(python_files(parts))
    assert files, f"{what}: no Python file found under {parts}"
    assert violations(parts, forbidden) == [], what


def test_the_scanner_sees_every_kind_of_import() -> None:
    source = (
        "import p1_ingest.store\n"
        "from p1_ingest import app\n"
        "from . import sibling\n"
        "m = importlib.import_module('p1_ingest.cli')\n"
        "n = pytest.importorskip('p1_ingest.migrate')\n"
    )
    assert list(imported(source)) == [
        (1, "p1_ingest.store"),
        (2, "p1_ingest"),
        (4, "p1_ingest.cli"),
        (5, "p1_ingest.migrate"),
    ]


def test_the_services_do_share_the_schema() -> None:
    """The rules above are about the right files: both services import the schema library."""
    for service in ("services/ingest/src", "services/query/src"):
        modules = {
            m for path in python_files([service]) for _, m in imported(path.read_text(encoding="utf-8"))
        }
        assert any(m.startswith("p1_schema") for m in modules), service
