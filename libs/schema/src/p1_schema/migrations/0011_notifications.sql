-- The notifications p1-notify sent (issue 16): at most one warning and one result per device and
-- quarter, even across a restart of p1-notify or two replicas running at once. A notifier *claims* a
-- row (INSERT … ON CONFLICT DO NOTHING RETURNING) before it sends; only the one whose insert returned a
-- row sends. At-most-once: a notifier that dies between its claim and its delivery loses that message
-- (the row stays with sent_at NULL), never sends it twice. Query lists the rows
-- (GET /v1/devices/{device_id}/notifications). Not tied to `devices` by a foreign key: notify writes
-- only here, and a device's rows are history.
CREATE TABLE notifications (
    device_id     text NOT NULL,
    quarter_start timestamptz NOT NULL,
    kind          text NOT NULL CONSTRAINT notifications_kind CHECK (kind IN ('warning', 'result')),
    claimed_at    timestamptz NOT NULL DEFAULT now(),
    -- when delivery to every channel was finished (whatever each answered); NULL: claimed, not finished
    sent_at       timestamptz,
    message       text NOT NULL,
    -- per channel, in the config's order: {"channel": <the URL with its secrets masked>, "ok": bool,
    -- "attempts": n}; never a secret
    channels      jsonb NOT NULL DEFAULT '[]'::jsonb,
    PRIMARY KEY (device_id, quarter_start, kind)
);

-- No new writer version: ingest writes nothing new.
