-- Outbox: every CRM event, in commit order. payload is the exact body sent.
CREATE TABLE events (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    type            TEXT NOT NULL,
    conversation_id TEXT NOT NULL DEFAULT '',
    sequence        INTEGER NOT NULL DEFAULT 0,
    occurred_at     INTEGER NOT NULL, -- unix nanoseconds
    payload         BLOB NOT NULL
);
CREATE INDEX events_conversation ON events (conversation_id, sequence);
CREATE INDEX events_occurred ON events (occurred_at);

-- One row per (event, endpoint) due.
CREATE TABLE deliveries (
    endpoint_id     TEXT NOT NULL,
    event_seq       INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    status          TEXT NOT NULL, -- pending, delivered, dead, disabled
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    first_tried_at  INTEGER NOT NULL DEFAULT 0,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, event_seq)
) WITHOUT ROWID;
CREATE INDEX deliveries_pending ON deliveries (endpoint_id, event_seq) WHERE status = 'pending';
CREATE INDEX deliveries_dead ON deliveries (endpoint_id, event_seq) WHERE status = 'dead';

-- The attempt log.
CREATE TABLE attempts (
    id              INTEGER PRIMARY KEY,
    event_id        TEXT NOT NULL,
    endpoint_id     TEXT NOT NULL,
    at              INTEGER NOT NULL,
    status_code     INTEGER NOT NULL,
    latency_ns      INTEGER NOT NULL,
    error           TEXT NOT NULL DEFAULT '',
    outcome         TEXT NOT NULL,
    next_attempt_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX attempts_endpoint ON attempts (endpoint_id, at);
CREATE INDEX attempts_event ON attempts (event_id);

-- Call history, and the tracker's state of open calls.
CREATE TABLE conversations (
    id            TEXT PRIMARY KEY,
    direction     TEXT NOT NULL,
    caller_number TEXT NOT NULL DEFAULT '',
    callee_number TEXT NOT NULL DEFAULT '',
    agent         TEXT NOT NULL DEFAULT '',
    queue         TEXT NOT NULL DEFAULT '',
    started_at    INTEGER NOT NULL,
    answered_at   INTEGER,
    ended_at      INTEGER,
    duration_s    INTEGER,
    talk_s        INTEGER,
    disposition   TEXT NOT NULL DEFAULT '',
    open          INTEGER NOT NULL,
    last_seq      INTEGER NOT NULL,
    state         BLOB,
    call          BLOB NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX conversations_started ON conversations (started_at, id);
CREATE INDEX conversations_open ON conversations (open) WHERE open = 1;
CREATE INDEX conversations_caller ON conversations (caller_number);
CREATE INDEX conversations_callee ON conversations (callee_number);
CREATE INDEX conversations_agent ON conversations (agent, started_at);

-- Webhook endpoints created over the API.
CREATE TABLE endpoints (
    id              TEXT PRIMARY KEY,
    url             TEXT NOT NULL,
    secret          TEXT NOT NULL,
    events          TEXT NOT NULL, -- JSON array
    disabled        INTEGER NOT NULL DEFAULT 0,
    disabled_reason TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL
);

-- Disabled state of endpoints from the config file (they have no row above).
CREATE TABLE endpoint_state (
    id              TEXT PRIMARY KEY,
    disabled_reason TEXT NOT NULL,
    disabled_at     INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    hash         BLOB NOT NULL UNIQUE,
    scopes       TEXT NOT NULL, -- comma-separated
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);

CREATE TABLE idempotency_keys (
    key        TEXT NOT NULL,
    scope      TEXT NOT NULL,
    result     BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);

-- Written by the readiness probe.
CREATE TABLE heartbeat (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL);

