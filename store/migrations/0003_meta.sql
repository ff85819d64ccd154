-- Facts the store keeps about itself, by name. (IF NOT EXISTS / OR IGNORE:
-- applying this again to a database that has it changes nothing.)
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Once an API key has existed, requests without a key stay refused even
-- after the last key is revoked (the HTTP default fails closed). A database
-- that already holds keys has had one since the oldest of them.
INSERT OR IGNORE INTO meta (name, value)
    SELECT 'api_key_created_at', CAST(created_at AS TEXT) FROM api_keys ORDER BY created_at LIMIT 1;
