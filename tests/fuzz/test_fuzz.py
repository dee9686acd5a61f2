"""The fuzz harness in ``make test``: every seed through its target, then a short coverage-guided run of
every target at once (``make fuzz`` runs each one for minutes). Inputs the fuzzer found are regular tests
in the packages they concern; see the README of this directory's fuzz.py."""

import subprocess
import sys
from pathlib import Path

import pytest
from fuzz_targets import SEEDS, TARGETS

FUZZ = Path(__file__).with_name("fuzz.py")
# A few seconds on this machine's 2 cores: enough to reach past every seed, short enough for every run.
SHORT_RUNS = 20_000


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_seed_is_accepted_or_a_typed_4xx(name: str) -> None:
    assert SEEDS[name], name
    for seed in SEEDS[name]:
        TARGETS[name](seed)


def test_a_short_coverage_guided_run_finds_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(FUZZ),
            "all",
            str(tmp_path / "corpus"),
            f"-runs={SHORT_RUNS}",
            "-seed=1",
            "-max_len=16384",
            "-timeout=10",
            f"-artifact_prefix={tmp_path}/",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert f"Done {SHORT_RUNS} runs" in done.stderr
    assert not list(tmp_path.glob("crash-*"))


def test_the_harness_lists_every_target() -> None:
    listed = subprocess.run(
        [sys.executable, str(FUZZ), "--list"], capture_output=True, text=True, timeout=60, check=True
    )
    assert listed.stdout.split() == sorted(TARGETS)
