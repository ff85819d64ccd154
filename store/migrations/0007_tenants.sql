-- Tenants (a PBX shared by many customers). Tables of their own (IF NOT
-- EXISTS), as api_key_agents: a key or API endpoint without a row is the
-- operator's, which sees every tenant.
CREATE TABLE IF NOT EXISTS api_key_tenants (
    id     TEXT PRIMARY KEY REFERENCES api_keys (id) ON DELETE CASCADE,
    tenant TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS endpoint_tenants (
    id     TEXT PRIMARY KEY REFERENCES endpoints (id) ON DELETE CASCADE,
    tenant TEXT NOT NULL
) WITHOUT ROWID;

-- History of one tenant: its calls carry "tenant" in the call's JSON.
CREATE INDEX IF NOT EXISTS conversations_tenant
    ON conversations (json_extract(CAST(call AS TEXT), '$.tenant'), started_at);
