-- The agent panel's sign-ins: the browser's cookie holds a session token,
-- never the agent's API key. Only the token's SHA-256 is kept; a session
-- goes with its key (revoking the key signs the panel out).
CREATE TABLE IF NOT EXISTS panel_sessions (
    hash       BLOB PRIMARY KEY,
    key_id     TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL -- unix nanoseconds
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS panel_sessions_key ON panel_sessions (key_id);
