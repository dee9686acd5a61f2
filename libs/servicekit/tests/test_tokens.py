import hashlib

import pytest

from p1_servicekit.tokens import TokenConfigError, bearer_token, parse_device_tokens, parse_read_tokens


def test_device_tokens_plain_and_sha256() -> None:
    hashed = hashlib.sha256(b"s3cret").hexdigest()
    table = parse_device_tokens(f"abc:dev1, sha256:{hashed}:dev2 ,")
    assert len(table) == 2
    assert table.scope_of("abc") == {"dev1"}
    assert table.scope_of("s3cret") == {"dev2"}
    assert table.scope_of(f"sha256:{hashed}") is None  # the digest itself is not a token
    assert table.scope_of("ab") is None


def test_a_token_may_contain_colons() -> None:
    assert parse_device_tokens("a:b:c:dev1").scope_of("a:b:c") == {"dev1"}


def test_read_tokens_scopes() -> None:
    table = parse_read_tokens("r1:devA|devB,all:*")
    assert table.scope_of("r1") == {"devA", "devB"}
    assert table.scope_of("all") == {"*"}


@pytest.mark.parametrize(
    "raw",
    ["nocolon", ":dev1", "tok:bad id", "sha256:abc:dev1", "sha256:" + "0" * 64],
)
def test_malformed_device_entries_are_refused_without_echoing_secrets(raw: str) -> None:
    with pytest.raises(TokenConfigError) as info:
        parse_device_tokens(raw)
    assert "entry 1" in str(info.value)
    assert "nocolon" not in str(info.value)


@pytest.mark.parametrize("raw", ["tok:", "tok:a|*", "tok:a|b c"])
def test_malformed_read_entries_are_refused(raw: str) -> None:
    with pytest.raises(TokenConfigError):
        parse_read_tokens(raw)


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None), (None, None)],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token
