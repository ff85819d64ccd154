package bridge

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkReconcile1000 measures one periodic reconcile against 1,000 live
// answered calls (2,000 channels) that all match the PBX's list: the cost
// the safety net adds every pbx.reconcile_interval.
func BenchmarkReconcile1000(b *testing.B) {
	tr := newTestTracker()
	var live []Channel
	for i := range 1000 {
		caller := Channel{ID: fmt.Sprintf("%d.%d", 1796000000+i, 2*i), Name: fmt.Sprintf("PJSIP/trunk-%08x", 2*i),
			CallerNum: "+74954451120", Context: "from-trunk", Exten: "5000", State: "Up"}
		caller.LinkedID = caller.ID
		agent := Channel{ID: fmt.Sprintf("%d.%d", 1796000000+i, 2*i+1), Name: fmt.Sprintf("PJSIP/%d-%08x", 200+i%100, 2*i+1),
			LinkedID: caller.ID, State: "Up"}
		run(tr,
			ChannelEvent{Kind: ChanNew, Channel: caller, At: t0},
			ChannelEvent{Kind: ChanDial, Channel: caller, Peer: &agent, At: t0},
			ChannelEvent{Kind: ChanDialEnd, Channel: caller, Peer: &agent, DialStatus: "ANSWER", At: t0})
		live = append(live, adaptAll(caller, agent)...)
	}
	at := t0.Add(time.Hour)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		tr.Reconcile(live, at)
		if evs, _ := tr.Drain(); len(evs) != 0 {
			b.Fatalf("a reconcile of a matching list emitted %d events", len(evs))
		}
	}
}
