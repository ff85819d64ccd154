-- Prune and the events -> deliveries cascade look deliveries up by event;
-- without this index each deleted event scans the whole table.
CREATE INDEX deliveries_event ON deliveries (event_seq);

-- History filters return newest first: each filter column is paired with
-- started_at so a page is an index range, not a sort of every match.
DROP INDEX conversations_caller;
DROP INDEX conversations_callee;
CREATE INDEX conversations_caller ON conversations (caller_number, started_at);
CREATE INDEX conversations_callee ON conversations (callee_number, started_at);
CREATE INDEX conversations_direction ON conversations (direction, started_at);
CREATE INDEX conversations_disposition ON conversations (disposition, started_at);

-- Idempotency keys are pruned by age.
CREATE INDEX idempotency_created ON idempotency_keys (created_at);
