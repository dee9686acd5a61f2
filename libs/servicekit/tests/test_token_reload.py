"""Token files (DEVICE_TOKENS_FILE, READ_TOKENS_FILE): their format, the start-up rule (exactly one of the
variable and the file, and a good file), and the reloader on real files changed as editors and a
Kubernetes Secret volume change them. The services' own processes are tested in their packages."""

import hashlib
import logging
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from p1_servicekit.testing import assert_no_secret
from p1_servicekit.testing_files import SecretVolume, write_by_rename, write_in_place
from p1_servicekit.token_reload import (
    REJECTED,
    RELOADED,
    ReloadingTokens,
    ReloadMetrics,
    check_token_settings,
    read_token_file,
)
from p1_servicekit.tokens import DEVICE_TOKENS, READ_TOKENS, TokenConfigError

SECRETS = ["tok-alpha-1", "tok-bravo-2", "tok-charlie-3", "half-writ"]


def test_a_file_has_one_or_more_entries_per_line_and_comment_lines(tmp_path: Path) -> None:
    hashed = hashlib.sha256(b"tok-bravo-2").hexdigest()
    path = tmp_path / "tokens"
    lines = ["# the Peeters home", "tok-alpha-1:meter-1", "", "  # the Janssens home"]
    path.write_text("\n".join([*lines, f"sha256:{hashed}:meter-2, x:meter-3"]) + "\n")
    table = read_token_file(path, DEVICE_TOKENS)
    assert len(table) == 3
    assert table.scope_of("tok-alpha-1") == {"meter-1"}
    assert table.scope_of("tok-bravo-2") == {"meter-2"}
    assert table.scope_of("x") == {"meter-3"}
    assert table.scope_of("# the Peeters home") is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("ok:meter-1\ntok-alpha-1:bad id\n", "DEVICE_TOKENS_FILE line 2: the part after the last ':'"),
        ("ok:meter-1\nhalf-writ", "DEVICE_TOKENS_FILE line 2: expected <token>:<scope>"),
        ("# only a comment\n\n", "has no entry"),
        ("", "has no entry"),
    ],
)
def test_a_bad_file_is_named_by_line_never_by_its_text(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "tokens"
    path.write_text(text)
    with pytest.raises(TokenConfigError) as info:
        read_token_file(path, DEVICE_TOKENS)
    assert problem in str(info.value)
    assert_no_secret({"error": str(info.value)}, SECRETS)


def test_read_token_files_take_read_scopes(tmp_path: Path) -> None:
    path = tmp_path / "read"
    path.write_text("r1:devA|devB\nall:*\n")
    table = read_token_file(path, READ_TOKENS)
    assert table.scope_of("r1") == {"devA", "devB"}
    assert table.scope_of("all") == {"*"}


def test_the_variable_or_the_file_exactly_one_and_good(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.write_text("t:meter-1\n")
    check_token_settings(DEVICE_TOKENS, None, good)
    check_token_settings(DEVICE_TOKENS, "t:meter-1", None)
    cases = [
        ("t:meter-1", good, "DEVICE_TOKENS and DEVICE_TOKENS_FILE are both set"),
        (None, None, "DEVICE_TOKENS or DEVICE_TOKENS_FILE is required"),
        (" , ", None, "DEVICE_TOKENS has no entry"),
        (None, tmp_path / "absent", f"DEVICE_TOKENS_FILE: cannot read {tmp_path / 'absent'} (No such file"),
    ]
    for value, path, problem in cases:
        with pytest.raises(ValueError, match=r".") as info:
            check_token_settings(DEVICE_TOKENS, value, path)
        assert str(info.value).startswith(problem), str(info.value)


def _reloader(path: Path) -> tuple[ReloadingTokens, CollectorRegistry]:
    registry = CollectorRegistry()
    return ReloadingTokens(path, DEVICE_TOKENS, ReloadMetrics(registry, "test")), registry


def _count(registry: CollectorRegistry, result: str) -> float:
    value = registry.get_sample_value("p1_token_reload_total", {"service": "test", "result": result})
    assert value is not None
    return value


async def test_changes_by_rename_and_in_place_are_taken(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("tok-alpha-1:meter-1\n")
    tokens, registry = _reloader(path)
    assert await tokens.poll() is None  # unchanged
    write_by_rename(path, "tok-alpha-1:meter-1\ntok-bravo-2:meter-2\n")
    assert await tokens.poll() == RELOADED
    assert tokens.scope_of("tok-bravo-2") == {"meter-2"}
    write_in_place(path, "tok-bravo-2:meter-2\n")
    assert await tokens.poll() == RELOADED
    assert tokens.scope_of("tok-alpha-1") is None
    assert tokens.scope_of("tok-bravo-2") == {"meter-2"}
    assert (_count(registry, RELOADED), _count(registry, REJECTED)) == (2, 0)


async def test_a_bad_empty_or_missing_file_keeps_the_last_good_table_and_is_reported_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tokens"
    path.write_text("tok-alpha-1:meter-1\n")
    tokens, registry = _reloader(path)
    caplog.set_level(logging.INFO, logger="p1_servicekit.token_reload")
    for state in ("tok-alpha-1:meter-1\ntok-charlie-3", "", None, b"\xff\xfe tok-bravo-2:meter-2"):
        if state is None:
            path.unlink()
        elif isinstance(state, bytes):
            path.write_bytes(state)
        else:
            write_in_place(path, state)
        assert await tokens.poll() == REJECTED
        assert await tokens.poll() is None  # the same bad state: not logged nor counted again
        assert tokens.scope_of("tok-alpha-1") == {"meter-1"}
    assert _count(registry, REJECTED) == 4
    rejected = [r for r in caplog.records if r.getMessage().startswith("token file rejected")]
    reasons = [str(r.__dict__["reason"]).split(":")[0] for r in rejected]
    assert reasons == ["DEVICE_TOKENS_FILE line 2"] + ["DEVICE_TOKENS_FILE"] * 3
    assert_no_secret({"log": "\n".join(str(r.__dict__) for r in caplog.records)}, SECRETS)
    path.write_text("tok-charlie-3:meter-3\n")
    assert await tokens.poll() == RELOADED
    assert tokens.scope_of("tok-alpha-1") is None
    assert tokens.scope_of("tok-charlie-3") == {"meter-3"}


async def test_a_secret_volume_symlink_swap_is_taken(tmp_path: Path) -> None:
    volume = SecretVolume(tmp_path / "secret", {"DEVICE_TOKENS": "tok-alpha-1:meter-1\n"})
    tokens, _ = _reloader(volume.path("DEVICE_TOKENS"))
    volume.update({"DEVICE_TOKENS": "tok-bravo-2:meter-2\n"})
    assert await tokens.poll() == RELOADED
    assert tokens.scope_of("tok-alpha-1") is None
    assert tokens.scope_of("tok-bravo-2") == {"meter-2"}


def test_no_start_without_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("tok-alpha-1")
    with pytest.raises(TokenConfigError):
        _reloader(path)
