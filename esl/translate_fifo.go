package esl

import "github.com/ctibridge/ctibridge/bridge"

// mod_fifo reports its queue as CUSTOM fifo::info events fired on the
// caller's channel (mod_fifo.c, fifo "in"): FIFO-Action push when the
// caller starts waiting, abort when it leaves while waiting (it hung up, or
// a transfer took it away). A consumer taking the caller (caller_pop, then
// bridge-caller-start) is told by the bridge that follows, as for any agent
// waiting in a PBX service; those events are not read at all: they carry
// the caller's profile as the bridge rewrote it (the consumer's number).
func (x *txn) fifo() {
	var kind bridge.ChannelEventKind
	switch x.e.Get("FIFO-Action") {
	case "push":
		kind = bridge.ChanQueueJoin
	case "abort":
		kind = bridge.ChanQueueAbandon
	default:
		return
	}
	st := x.known()
	if st == nil {
		return
	}
	x.emit(kind, st, func(ev *bridge.ChannelEvent) {
		ev.Queue = x.e.Get("FIFO-Name")
		if kind == bridge.ChanQueueAbandon && hangingUp(x.e) {
			ev.Reason = bridge.AbandonCallerHungUp
		}
	})
}
