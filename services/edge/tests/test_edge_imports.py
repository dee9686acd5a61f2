"""The edge runs on a Pi without the services' stack: importing every module of p1_edge (and so of
p1_config, which it shares with the services) loads no web framework, database driver or servicekit.
asyncpg has no armv7 wheel; the Pi's image does not even install them (tests/deploy checks the lock)."""

import subprocess
import sys

# Top-level modules that belong to the services only.
SERVICES_ONLY = (
    "fastapi",
    "starlette",
    "uvicorn",
    "asyncpg",
    "redis",
    "p1_servicekit",
    "p1_ingest",
    "p1_query",
)

PROBE = f"""
import importlib, pkgutil, sys
import p1_config, p1_edge
for package in (p1_config, p1_edge):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
loaded = sorted({{name.split(".")[0] for name in sys.modules}} & set({SERVICES_ONLY!r}))
print(",".join(loaded))
"""


def test_every_edge_module_imports_without_the_services_stack() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"the edge loads {done.stdout.strip()}"
