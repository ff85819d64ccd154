-- Agent-scoped API keys (the agent panel): a key with a row here sees and
-- commands only that extension's calls and state. A table of its own (IF
-- NOT EXISTS) so this applies again, harmlessly; it goes with its key.
CREATE TABLE IF NOT EXISTS api_key_agents (
    id    TEXT PRIMARY KEY REFERENCES api_keys (id) ON DELETE CASCADE,
    agent TEXT NOT NULL
) WITHOUT ROWID;
