package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

var (
	_ bridge.Outbox        = (*DB)(nil)
	_ bridge.DeliveryStore = (*DB)(nil)
)

const (
	insertEventSQL = `INSERT INTO events (id, type, conversation_id, sequence, occurred_at, payload)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`
	insertDeliverySQL = `INSERT INTO deliveries (endpoint_id, event_seq, status, next_attempt_at, updated_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	endpointDisabledSQL = `SELECT EXISTS (SELECT 1 FROM endpoint_state WHERE id = ?1)
		OR EXISTS (SELECT 1 FROM endpoints WHERE id = ?1 AND disabled = 1)`
	// A conversation is written on every event, but its indexed columns
	// (who, when, how it ended) rarely change. The common update therefore
	// sets only unindexed columns and applies only when every indexed one
	// is unchanged, so SQLite touches the table row and none of the seven
	// indexes; otherwise (0 rows changed) the full update runs.
	insertConversationSQL = `INSERT INTO conversations (id, direction, caller_number, callee_number, agent, queue,
		started_at, answered_at, ended_at, duration_s, talk_s, disposition, open, last_seq, state, call, updated_at)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
		ON CONFLICT (id) DO UPDATE SET queue = excluded.queue, answered_at = excluded.answered_at,
		ended_at = excluded.ended_at, duration_s = excluded.duration_s, talk_s = excluded.talk_s,
		last_seq = MAX(last_seq, excluded.last_seq), state = excluded.state, call = excluded.call, updated_at = excluded.updated_at
		WHERE direction = excluded.direction AND caller_number = excluded.caller_number AND callee_number = excluded.callee_number
		AND agent = excluded.agent AND started_at = excluded.started_at AND disposition = excluded.disposition AND open = excluded.open`
	updateConversationSQL = `UPDATE conversations SET direction = ?2, caller_number = ?3, callee_number = ?4, agent = ?5, queue = ?6,
		started_at = ?7, answered_at = ?8, ended_at = ?9, duration_s = ?10, talk_s = ?11, disposition = ?12, open = ?13,
		last_seq = MAX(last_seq, ?14), state = ?15, call = ?16, updated_at = ?17 WHERE id = ?1`
	recordCols = `e.seq, e.id, e.type, e.conversation_id, e.sequence, e.occurred_at, e.payload`
)

// Commit writes a batch in one transaction: its events (Seq is filled in
// place once committed), one pending delivery per (event, endpoint) due now,
// and the conversations it changed. An event whose id is already stored is
// skipped, so a batch retried after an unclear failure is not duplicated.
func (db *DB) Commit(ctx context.Context, b *bridge.Batch) error {
	if b == nil || len(b.Events)+len(b.Conversations) == 0 {
		return nil
	}
	rows := len(b.Conversations)
	for i, e := range b.Events {
		if e.ID == "" {
			return bridge.FieldError(fmt.Sprintf("events[%d].id", i), "is empty")
		}
		if e.Type == "" {
			return bridge.FieldError(fmt.Sprintf("events[%d].type", i), "is empty (event %s)", e.ID)
		}
		rows += 1 + len(e.EndpointIDs)
	}
	// JSON and argument lists are built here, on the caller's goroutine,
	// to keep the single writer busy with SQLite only.
	convs := make([][]any, 0, len(b.Conversations))
	var discard []string
	for i, c := range b.Conversations {
		if c.Discard {
			discard = append(discard, c.Call.ID)
			continue
		}
		args, err := conversationArgs(c)
		if err != nil {
			return bridge.FieldError(fmt.Sprintf("conversations[%d]", i), "%v", err)
		}
		convs = append(convs, args)
	}
	now := time.Now().UnixNano()
	write := db.write
	if len(b.Events) == 0 {
		// Only the calls' working state changed: no fsync of its own (the
		// next batch with events makes it durable; see writeRelaxed).
		write = db.writeRelaxed
	}
	return write(ctx, rows, func(w *wtx) error {
		// Read in this transaction, so an endpoint disabled by an earlier
		// write (a 410 the engine has not heard of yet) gets no pending
		// delivery that nobody would ever attempt.
		status := map[string]string{}
		statusOf := func(ep string) (string, error) {
			if st, ok := status[ep]; ok {
				return st, nil
			}
			var disabled bool
			if err := w.queryRow(endpointDisabledSQL, ep).Scan(&disabled); err != nil {
				return "", err
			}
			st := string(bridge.DeliveryPending)
			if disabled {
				st = string(bridge.DeliveryDisabled)
			}
			status[ep] = st
			return st, nil
		}
		seqs := make([]int64, len(b.Events))
		for i := range b.Events {
			e := &b.Events[i]
			res, err := w.exec(insertEventSQL, e.ID, e.Type, e.ConversationID, e.Sequence, nanos(e.OccurredAt), payload(e.Payload))
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				// Stored before: keep its position and its deliveries.
				if err := w.queryRow(`SELECT seq FROM events WHERE id = ?`, e.ID).Scan(&seqs[i]); err != nil {
					return err
				}
				continue
			}
			if seqs[i], err = res.LastInsertId(); err != nil {
				return err
			}
			for _, ep := range e.EndpointIDs {
				st, err := statusOf(ep)
				if err != nil {
					return err
				}
				res, err := w.exec(insertDeliverySQL, ep, seqs[i], st, now, now)
				if err != nil {
					return err
				}
				if n, _ := res.RowsAffected(); st == string(bridge.DeliveryPending) {
					w.pending += n
				}
			}
		}
		for _, args := range convs {
			res, err := w.exec(insertConversationSQL, args...)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				if _, err := w.exec(updateConversationSQL, args...); err != nil {
					return err
				}
			}
		}
		for _, id := range discard {
			// Only a conversation that never issued an event goes.
			if _, err := w.exec(`DELETE FROM conversations WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM events WHERE conversation_id = ?1)`, id); err != nil {
				return err
			}
		}
		w.onCommit = func() {
			for i := range seqs {
				b.Events[i].Seq = seqs[i]
			}
		}
		return nil
	})
}

// payload keeps a nil body storable (the column is NOT NULL).
func payload(p []byte) []byte {
	if p == nil {
		return []byte{}
	}
	return p
}

func conversationArgs(c bridge.ConversationRecord) ([]any, error) {
	if c.Call.ID == "" {
		return nil, errors.New("call id is empty")
	}
	call, err := json.Marshal(c.Call)
	if err != nil {
		return nil, err
	}
	agent := ""
	if c.Call.Agent != nil {
		agent = c.Call.Agent.Extension
	}
	var answered, ended, dur, talk any
	if c.Call.AnsweredAt != nil {
		answered = c.Call.AnsweredAt.UnixNano()
	}
	if c.Call.EndedAt != nil {
		ended = c.Call.EndedAt.UnixNano()
	}
	if c.Call.DurationS != nil {
		dur = *c.Call.DurationS
	}
	if c.Call.TalkS != nil {
		talk = *c.Call.TalkS
	}
	state := c.State
	if !c.Open {
		state = nil // an ended call is never adopted again
	}
	updated := c.UpdatedAt
	if updated.IsZero() {
		updated = time.Now()
	}
	return []any{c.Call.ID, string(c.Call.Direction), c.Call.Caller.Number, c.Call.Callee.Number, agent, c.Call.Queue,
		nanos(c.Call.StartedAt), answered, ended, dur, talk, string(c.Call.Disposition), c.Open, c.LastSeq, state, call,
		updated.UnixNano()}, nil
}

const conversationCols = `id, open, last_seq, state, call, updated_at, started_at`

func scanConversation(row interface{ Scan(...any) error }) (bridge.ConversationRecord, int64, error) {
	var c bridge.ConversationRecord
	var id string
	var call []byte
	var updated, started int64
	if err := row.Scan(&id, &c.Open, &c.LastSeq, &c.State, &call, &updated, &started); err != nil {
		return c, 0, err
	}
	if err := json.Unmarshal(call, &c.Call); err != nil {
		return c, 0, fmt.Errorf("conversation %s: stored call JSON: %w", id, err)
	}
	c.UpdatedAt = fromNanos(updated)
	return c, started, nil
}

func (db *DB) conversations(ctx context.Context, q string, args ...any) ([]bridge.ConversationRecord, []int64, error) {
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, nil, db.wrap(err)
	}
	defer rows.Close()
	var out []bridge.ConversationRecord
	var starts []int64
	for rows.Next() {
		c, started, err := scanConversation(rows)
		if err != nil {
			return nil, nil, db.wrap(err)
		}
		out = append(out, c)
		starts = append(starts, started)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, db.wrap(err)
	}
	return out, starts, nil
}

// OpenConversations returns the calls not yet ended, with their tracker
// state, for adoption after a restart.
func (db *DB) OpenConversations(ctx context.Context) ([]bridge.ConversationRecord, error) {
	out, _, err := db.conversations(ctx, `SELECT `+conversationCols+` FROM conversations WHERE open = 1 ORDER BY started_at, id`)
	return out, err
}

// Conversation returns one conversation.
func (db *DB) Conversation(ctx context.Context, id string) (bridge.ConversationRecord, error) {
	out, _, err := db.conversations(ctx, `SELECT `+conversationCols+` FROM conversations WHERE id = ?`, id)
	if err != nil {
		return bridge.ConversationRecord{}, err
	}
	if len(out) == 0 {
		return bridge.ConversationRecord{}, notFound("id", "no call with id %q", id)
	}
	return out[0], nil
}

// ConversationEvents returns a conversation's events in sequence order
// (empty for an unknown conversation).
func (db *DB) ConversationEvents(ctx context.Context, conversationID string) ([]bridge.Record, error) {
	return db.records(ctx, `SELECT `+recordCols+` FROM events e WHERE e.conversation_id = ? ORDER BY e.sequence, e.seq`, conversationID)
}

// LatestAgentStates returns the newest agent.state event of each agent in
// each queue, oldest first: the agents' states as last reported, without
// reading every state change ever kept.
func (db *DB) LatestAgentStates(ctx context.Context) ([]bridge.Record, error) {
	return db.records(ctx, `SELECT `+recordCols+` FROM events e WHERE e.seq IN (
		SELECT MAX(seq) FROM events WHERE conversation_id = '' AND type = 'agent.state'
		GROUP BY json_extract(payload, '$.agent.extension'), json_extract(payload, '$.agent_state.queue')) ORDER BY e.seq`)
}

// Event returns one event by id.
func (db *DB) Event(ctx context.Context, id string) (bridge.Record, error) {
	recs, err := db.records(ctx, `SELECT `+recordCols+` FROM events e WHERE e.id = ?`, id)
	if err != nil {
		return bridge.Record{}, err
	}
	if len(recs) == 0 {
		return bridge.Record{}, notFound("id", "no event with id %q", id)
	}
	return recs[0], nil
}

func (db *DB) records(ctx context.Context, q string, args ...any) ([]bridge.Record, error) {
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, db.wrap(err)
	}
	defer rows.Close()
	var out []bridge.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, db.wrap(err)
		}
		out = append(out, r)
	}
	return out, db.wrap(rows.Err())
}

func scanRecord(row interface{ Scan(...any) error }) (bridge.Record, error) {
	var r bridge.Record
	var at int64
	err := row.Scan(&r.Seq, &r.ID, &r.Type, &r.ConversationID, &r.Sequence, &at, &r.Payload)
	r.OccurredAt = fromNanos(at)
	return r, err
}

// History returns calls newest first (started_at, then id, descending) and
// the cursor of the next page, "" on the last one. A cursor is a position,
// not an offset, so calls added meanwhile do not shift or repeat a page.
func (db *DB) History(ctx context.Context, f bridge.HistoryFilter) ([]bridge.ConversationRecord, string, error) {
	switch {
	case f.Limit < 0 || f.Limit > bridge.MaxHistoryLimit:
		return nil, "", bridge.FieldError("limit", "must be between 1 and %d, got %d", bridge.MaxHistoryLimit, f.Limit)
	case f.Limit == 0:
		f.Limit = 50
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return nil, "", bridge.FieldError("from", "must be before to (%s >= %s)", f.From.Format(time.RFC3339), f.To.Format(time.RFC3339))
	}
	switch bridge.Direction(f.Direction) {
	case "", bridge.DirectionInbound, bridge.DirectionOutbound, bridge.DirectionInternal, bridge.DirectionUnknown:
	default:
		return nil, "", bridge.FieldError("direction", "must be inbound, outbound, internal or unknown, got %q", f.Direction)
	}
	switch bridge.Disposition(f.Disposition) {
	case "", bridge.DispositionAnswered, bridge.DispositionNoAnswer, bridge.DispositionBusy, bridge.DispositionFailed, bridge.DispositionCancelled:
	default:
		return nil, "", bridge.FieldError("disposition", "must be answered, no_answer, busy, failed or cancelled, got %q", f.Disposition)
	}
	var where []string
	var args []any
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	if !f.From.IsZero() {
		add(`started_at >= ?`, f.From.UnixNano())
	}
	if !f.To.IsZero() {
		add(`started_at < ?`, f.To.UnixNano())
	}
	if f.Number != "" {
		add(`(caller_number = ? OR callee_number = ?)`, f.Number, f.Number)
	}
	if f.Agent != "" {
		add(`agent = ?`, f.Agent)
	}
	if f.Direction != "" {
		add(`direction = ?`, f.Direction)
	}
	if f.Tenant != "" {
		// The expression of the conversations_tenant index (0007).
		add(`json_extract(CAST(call AS TEXT), '$.tenant') = ?`, f.Tenant)
	}
	if f.Disposition != "" {
		add(`disposition = ?`, f.Disposition)
	}
	if f.Cursor != "" {
		ts, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", bridge.FieldError("cursor", "is not a cursor returned by a previous page")
		}
		add(`(started_at < ? OR (started_at = ? AND id < ?))`, ts, ts, id)
	}
	q := `SELECT ` + conversationCols + ` FROM conversations`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY started_at DESC, id DESC LIMIT ?`
	args = append(args, f.Limit+1)
	out, starts, err := db.conversations(ctx, q, args...)
	if err != nil {
		return nil, "", err
	}
	for i := range out {
		out[i].State = nil // tracker internals are not history
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		next = encodeCursor(starts[f.Limit-1], out[f.Limit-1].Call.ID)
	}
	return out, next, nil
}

func encodeCursor(ts int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(ts, 10) + "|" + id))
}

func decodeCursor(c string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", err
	}
	ts, id, ok := strings.Cut(string(b), "|")
	if !ok || id == "" {
		return 0, "", errors.New("bad cursor")
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	return n, id, err
}

// errNoRows reports sql.ErrNoRows.
func errNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
