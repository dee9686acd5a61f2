"""How backup and restore hand DATABASE_URL to pg_dump/pg_restore (the password only in PGPASSWORD) and
which of their messages they pass on. The programs themselves run in test_backup.py."""

import pytest

from p1_ingest.pgtools import libpq_connection, useful_messages


@pytest.mark.parametrize(
    ("url", "without", "password"),
    [
        ("postgresql://p1:s%2Fe%2Bc%40r%3At@db:5432/p1", "postgresql://p1@db:5432/p1", "s/e+c@r:t"),
        (
            "postgresql://p1@db/p1?sslmode=verify-full&password=pw%26x",
            "postgresql://p1@db/p1?sslmode=verify-full",
            "pw&x",
        ),
        ("postgres://u%40x:pw@[::1]:6432/d", "postgres://u%40x@[::1]:6432/d", "pw"),
        # no password in the URL: the caller's PGPASSWORD stays, as asyncpg uses it (compose's way)
        (
            "postgresql://postgres@127.0.0.1:5432/postgres",
            "postgresql://postgres@127.0.0.1:5432/postgres",
            "from-the-callers-environment",
        ),
    ],
)
def test_the_password_leaves_the_url_for_the_environment(
    url: str, without: str, password: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", "from-the-callers-environment")
    conn = libpq_connection(url)
    assert conn.url == without
    assert conn.env.get("PGPASSWORD") == password


def test_timescaledbs_catalog_note_is_dropped_and_everything_else_kept_masked() -> None:
    stderr = "\n".join(
        [
            "pg_dump: warning: there are circular foreign-key constraints on this table:",
            "pg_dump: detail: continuous_agg",
            "pg_dump: hint: You might not be able to restore the dump without using --disable-triggers or …",
            "pg_dump: hint: Consider using a full dump instead of a --data-only dump to avoid this problem.",
            "pg_dump: error: connection to postgresql://p1:hunter2@db/p1 failed",
            "pg_dump: detail: something else",
        ]
    )
    assert useful_messages(stderr) == [
        "pg_dump: error: connection to postgresql://p1:***@db/p1 failed",
        "pg_dump: detail: something else",
    ]
