"""The short, bounded version of bench/load.py that CI runs: 100 edges for 20 s, no error, no loss."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(150)
def test_load_short_has_no_errors_no_loss_no_duplicates() -> None:
    argv = [sys.executable, str(ROOT / "bench/load.py")]
    argv += ["--edges", "100", "--duration", "20", "--period", "5"]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=140)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 1, result.stdout
    row = rows[0]
    assert row["edges"] == 100
    # 100 edges × 10 readings every 5 s for 20 s: 4 batches per edge (3 if the loop lagged)
    assert row["ingest n"] >= 300, row
    assert row["realtime n"] > 0, row
    assert row["series n"] > 0, row
    for key in ("ingest errors", "realtime errors", "series errors", "lost", "duplicates", "rollup mismatch"):
        assert row[key] == 0, (key, row)
