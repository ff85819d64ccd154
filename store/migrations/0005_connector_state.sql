-- CRM connectors' per-call state (JSON): what the CRM answered for the call
-- (e.g. Bitrix24's CALL_ID) and which steps are done, so that a retry or a
-- restart resumes rather than registers the call twice. It goes with its
-- conversation when the history is pruned. (IF NOT EXISTS: applying this
-- again changes nothing.)
CREATE TABLE IF NOT EXISTS connector_state (
    connector       TEXT NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    state           BLOB NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (connector, conversation_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS connector_state_conversation ON connector_state (conversation_id);
