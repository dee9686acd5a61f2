"""The waiting helpers every test polls with instead of sleeping, and the log-line readers."""

import itertools
import json

import pytest

from p1_servicekit.testing import eventually, log_records, logged, wait_until


def test_wait_until_returns_the_first_truthy_answer() -> None:
    answers = iter([None, [], {"up": 1}])
    assert wait_until(lambda: next(answers), 5, "an answer", step_s=0.001) == {"up": 1}


def test_wait_until_fails_naming_what_and_the_last_answer() -> None:
    counter = itertools.count()
    with pytest.raises(TimeoutError, match=r"waiting for the answer \(state 7\) \(last: \[\]\)"):
        wait_until(lambda: [] if next(counter) < 1000 else [1], 0.05, lambda: "the answer (state 7)", 0.01)


def test_wait_until_counts_ignored_errors_as_not_yet() -> None:
    calls = itertools.count()

    def flaky() -> int:
        if next(calls) < 2:
            raise KeyError("not yet")
        return 3

    assert wait_until(flaky, 5, "three", step_s=0.001, ignoring=(KeyError,)) == 3
    with pytest.raises(ValueError, match="boom"):  # not ignored: fails at once
        wait_until(lambda: int("boom"), 5, "a number")
    with pytest.raises(TimeoutError, match=r"\(last: KeyError\('gone'\)\)"):
        wait_until(lambda: {}["gone"], 0.02, "a key", step_s=0.005, ignoring=(KeyError,))


async def test_eventually_awaits_coroutine_predicates_and_plain_ones() -> None:
    seen: list[int] = []

    async def third() -> bool:
        seen.append(len(seen))
        return len(seen) >= 3

    assert await eventually(third, 5, "three calls", step_s=0.001) is True
    assert seen == [0, 1, 2]
    assert await eventually(lambda: "plain", 5, "a plain answer") == "plain"
    with pytest.raises(TimeoutError, match="never"):
        await eventually(lambda: False, 0.05, "never", step_s=0.01)


def test_log_records_reads_json_lines_and_skips_the_rest() -> None:
    lines = [
        json.dumps({"ts": "t", "level": "info", "logger": "p1_x", "msg": "up", "port": 8001}),
        "Traceback (most recent call last):",
        json.dumps([1, 2]),
        json.dumps({"msg": "down", "error": "E"}),
    ]
    text = "\n".join(lines)
    assert [r["msg"] for r in log_records(text)] == ["up", "down"]
    assert logged(text, "up", port=8001)
    assert not logged(text, "up", port=8002)
    assert not logged(text, "Traceback (most recent call last):")
