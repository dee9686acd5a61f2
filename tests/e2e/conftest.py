"""Makes e2e_kit importable (pytest runs with --import-mode=importlib) and gives each test a Stack."""

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from e2e_kit import Stack, StackFactory  # noqa: E402


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[StackFactory]:
    """Builds (not starts) stacks with a fresh device id each; stops every process they started."""
    made: list[Stack] = []

    def make(database_url: str, **kwargs: object) -> Stack:
        workdir = tmp_path / f"stack{len(made)}"
        workdir.mkdir()
        stack = Stack(workdir, database_url, f"e2e-{uuid.uuid4().hex[:10]}", **kwargs)  # type: ignore[arg-type]
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.close()
