-- Secret rotation: while an API endpoint has a row here, every request
-- carries a signature for its previous secret too, so receivers not yet
-- moved to the new secret keep verifying. A table of its own (IF NOT
-- EXISTS) so this applies again, harmlessly, to a database that has it.
CREATE TABLE IF NOT EXISTS endpoint_previous_secrets (
    id              TEXT PRIMARY KEY REFERENCES endpoints (id) ON DELETE CASCADE,
    previous_secret TEXT NOT NULL
) WITHOUT ROWID;
