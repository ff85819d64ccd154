package bridge

import (
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// Detach keeps every value and shares nothing with the frame the values
// were cut from.
func TestDetachCopiesEveryStringOffTheFrame(t *testing.T) {
	frame := strings.Repeat("x", 64) + "PJSIP/100-1|1700000000.1|5551234|Alice|inbound|200|tenant|MYVAR|v1|peer|ANSWER"
	cut := func(s string) string {
		i := strings.Index(frame, s)
		return frame[i : i+len(s)]
	}
	ev := ChannelEvent{Kind: ChanDial, DialStatus: cut("ANSWER"), Channel: Channel{ID: cut("1700000000.1"), Name: cut("PJSIP/100-1"),
		CallerNum: cut("5551234"), CallerName: cut("Alice"), Context: cut("inbound"), Exten: cut("200"), AccountCode: cut("tenant"),
		Vars: map[string]string{cut("MYVAR"): cut("v1")}}, Peer: &Channel{ID: cut("peer")}}
	peer := ev.Peer
	want := ev
	want.Peer = &Channel{ID: "peer"}
	want.Channel.Vars = map[string]string{"MYVAR": "v1"}

	ev.Detach()
	if !reflect.DeepEqual(ev, want) {
		t.Fatalf("detached event differs:\n got %+v\nwant %+v", ev, want)
	}
	if ev.Peer == peer {
		t.Error("the peer is still the caller's")
	}
	lo, hi := uintptr(unsafe.Pointer(unsafe.StringData(frame))), uintptr(unsafe.Pointer(unsafe.StringData(frame)))+uintptr(len(frame))
	inFrame := func(s string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		return len(s) > 0 && p >= lo && p < hi
	}
	fields := ev.Channel.stringFields(ev.stringFields(nil))
	fields = ev.Peer.stringFields(fields)
	for _, p := range fields {
		if inFrame(*p) {
			t.Errorf("%q still points into the frame", *p)
		}
	}
	for k, v := range ev.Channel.Vars {
		if inFrame(k) || inFrame(v) {
			t.Errorf("variable %q=%q still points into the frame", k, v)
		}
	}
}

// A string field added to ChannelEvent or Channel must be detached too.
func TestDetachCoversEveryStringField(t *testing.T) {
	count := func(typ reflect.Type) int {
		n := 0
		for i := 0; i < typ.NumField(); i++ {
			if typ.Field(i).Type.Kind() == reflect.String {
				n++
			}
		}
		return n
	}
	var c Channel
	if got, want := len(c.stringFields(nil)), count(reflect.TypeFor[Channel]()); got != want {
		t.Errorf("Channel has %d string fields, Detach copies %d", want, got)
	}
	var ev ChannelEvent
	if got, want := len(ev.stringFields(nil)), count(reflect.TypeFor[ChannelEvent]()); got != want {
		t.Errorf("ChannelEvent has %d string fields, Detach copies %d", want, got)
	}
	// Every string of a Listed is copied off the frame, into a Listed of
	// the event's own.
	frame := strings.Repeat("f", 32)
	listed := &Listed{}
	v := reflect.ValueOf(listed).Elem()
	for i := range v.NumField() {
		if v.Field(i).Kind() == reflect.String {
			v.Field(i).SetString(frame[i : i+1])
		}
	}
	ch := Channel{Listed: listed}
	ch.detachListed()
	if ch.Listed == listed || !reflect.DeepEqual(*ch.Listed, *listed) {
		t.Fatalf("detached Listed %+v (same: %v), want a copy of %+v", *ch.Listed, ch.Listed == listed, *listed)
	}
	lo := uintptr(unsafe.Pointer(unsafe.StringData(frame)))
	w := reflect.ValueOf(ch.Listed).Elem()
	for i := range w.NumField() {
		if f := w.Field(i); f.Kind() == reflect.String {
			if p := uintptr(unsafe.Pointer(unsafe.StringData(f.String()))); p >= lo && p < lo+uintptr(len(frame)) {
				t.Errorf("Listed.%s still points into the frame", w.Type().Field(i).Name)
			}
		}
	}
}

// A value the model keeps must not pin the event's other values: kept
// alone, an event's channel id costs its own bytes, not the event's.
func TestDetachedValueKeepsOnlyItself(t *testing.T) {
	const events, big = 2000, 4096
	heap := func() int64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	kept := make([]string, 0, events)
	before := heap()
	for i := range events {
		frame := fmt.Sprintf("%d.%d|%s", 1700000000, i, strings.Repeat("c", big))
		id, cause, _ := strings.Cut(frame, "|")
		ev := ChannelEvent{CauseText: cause, Channel: Channel{ID: id}}
		ev.Detach()
		kept = append(kept, ev.Channel.ID)
	}
	grown := heap() - before
	runtime.KeepAlive(kept)
	// 2,000 ids of 12 bytes take about 32 KB with the slice; pinned causes
	// would take 8 MB.
	if limit := int64(events * big / 8); grown > limit {
		t.Fatalf("keeping %d ids grew the heap by %d bytes (limit %d): each id pins its event's other values", events, grown, limit)
	}
}
