"""Compressed bodies (issue 11: these held; kept standing). A body is inflated only up to
MAX_DECOMPRESSED_BYTES (16 MiB by default), once: a bomb is a 413 whatever its ratio, gzip inside gzip is
not JSON (400), and none of it writes anything or stops the device."""

import gzip
from typing import Final

import pytest
from hostile_kit import WRITE_TOKENS, Meter, Stack, assert_problem, batch, post, still_works, writes_nothing

DEVICE = "h-gzip"
TOKEN = WRITE_TOKENS[DEVICE]
GZIP: Final = {"Content-Encoding": "gzip"}
MIB: Final = 1024 * 1024


@pytest.fixture(scope="module")
def meter() -> Meter:
    return Meter(DEVICE)


@pytest.fixture(scope="module")
def zeros_100mib() -> bytes:
    """100 MiB of zeros: about 100 kB compressed, 6 × the decompressed limit."""
    return gzip.compress(bytes(100 * MIB), compresslevel=9, mtime=0)


def _refused(stack: Stack, meter: Meter, body: bytes, status: int) -> str:
    with writes_nothing(stack, DEVICE):
        detail = str(assert_problem(post(stack, body, TOKEN, GZIP), status)["detail"])
    still_works(stack, meter)
    return detail


def test_ten_mib_of_zeros_compressed_is_not_json(stack: Stack, meter: Meter) -> None:
    """Under the decompressed limit, so inflated: then it is NUL bytes, not a batch."""
    body = gzip.compress(bytes(10 * MIB), mtime=0)
    assert len(body) < 20_000
    assert _refused(stack, meter, body, 400) == "The body is not valid JSON."


def test_a_gzip_bomb_stops_at_the_decompressed_limit(stack: Stack, meter: Meter, zeros_100mib: bytes) -> None:
    assert "once decompressed" in _refused(stack, meter, zeros_100mib, 413)


def test_gzip_inside_gzip_is_inflated_once(stack: Stack, meter: Meter) -> None:
    inner = gzip.compress(batch(DEVICE, meter.readings(2)), mtime=0)
    assert _refused(stack, meter, gzip.compress(inner, mtime=0), 400) == "The body is not valid JSON."


def test_a_bomb_inside_gzip_is_inflated_once(stack: Stack, meter: Meter, zeros_100mib: bytes) -> None:
    assert _refused(stack, meter, gzip.compress(zeros_100mib, mtime=0), 400) == "The body is not valid JSON."


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("not gzip", b'{"device_id":"h-gzip"}'),
        ("cut short", gzip.compress(b'{"device_id":"h-gzip","samples":[]}' * 50, mtime=0)[:-10]),
        ("two members", gzip.compress(b"{}", mtime=0) * 2),
        ("trailing bytes", gzip.compress(b"{}", mtime=0) + b"junk"),
    ],
)
def test_a_broken_gzip_stream_is_a_400(stack: Stack, meter: Meter, name: str, body: bytes) -> None:
    detail = _refused(stack, meter, body, 400)
    assert "gzip" in detail, name


def test_a_compressed_batch_is_stored(stack: Stack, meter: Meter) -> None:
    r = post(stack, gzip.compress(batch(DEVICE, meter.readings(3)), mtime=0), TOKEN, GZIP)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 3, "duplicates": 0}
