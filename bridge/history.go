package bridge

import "time"

// HistoryFilter selects calls from the history. Zero fields do not filter.
type HistoryFilter struct {
	From, To    time.Time // started_at in [From, To)
	Number      string    // the caller's or the callee's number, exactly as the PBX gave it
	Agent       string    // agent extension
	Direction   string    // inbound, outbound, internal, unknown
	Disposition string    // answered, no_answer, busy, failed, cancelled
	Tenant      string    // only this tenant's calls (a tenant key's history)
	Limit       int       // page size: default 50, at most MaxHistoryLimit
	Cursor      string    // from the previous page; "" for the first
}

// MaxHistoryLimit bounds one page of history.
const MaxHistoryLimit = 500
