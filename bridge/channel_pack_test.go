package bridge

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// filledChannel sets every field of a Channel, each to a value of its own,
// so a field Pack forgets shows in a round trip.
func filledChannel(t *testing.T, size int) Channel {
	t.Helper()
	var ch Channel
	fill(t, reflect.ValueOf(&ch).Elem(), size)
	return ch
}

// fill sets every field of the struct v as filledChannel says.
func fill(t *testing.T, v reflect.Value, size int) {
	t.Helper()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(fmt.Sprintf("%s=%s", v.Type().Field(i).Name, strings.Repeat("x", size)))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string]string{"CALL_DIRECTION": "in"}))
		case reflect.Struct:
			if f.Type() != reflect.TypeFor[time.Time]() {
				t.Fatalf("Channel.%s: a %s, which this test cannot fill", v.Type().Field(i).Name, f.Type())
			}
			f.Set(reflect.ValueOf(time.Date(2026, 12, 4, 4, 0, i, 0, time.UTC)))
		case reflect.Pointer:
			if f.Type() != reflect.TypeFor[*Listed]() {
				t.Fatalf("Channel.%s: a %s, which this test cannot fill", v.Type().Field(i).Name, f.Type())
			}
			f.Set(reflect.New(f.Type().Elem()))
			fill(t, f.Elem(), size)
		default:
			t.Fatalf("%s.%s: a %s, which this test cannot fill", v.Type().Name(), v.Type().Field(i).Name, f.Kind())
		}
	}
}

// Pack and Unpack keep every field: a field added to Channel and not to
// Pack fails here.
func TestPackKeepsEveryField(t *testing.T) {
	for _, size := range []int{0, 3, 200, 70000} { // lengths of one, two and three bytes
		ch := filledChannel(t, size)
		if id := Pack(ch).ID(); id != ch.ID {
			t.Fatalf("values of %d bytes: ID() = %.20q…, want %.20q…", size, id, ch.ID)
		}
		if got := Pack(ch).Unpack(); !reflect.DeepEqual(got, ch) {
			t.Fatalf("values of %d bytes: unpacked\n %+v\nwant\n %+v", size, got, ch)
		}
	}
	if got := Pack(Channel{}).Unpack(); !reflect.DeepEqual(got, Channel{}) {
		t.Fatalf("the empty channel unpacked as %+v", got)
	}
}

// A packed channel is small, and fits a map's slot (Go allocates a map
// value over 128 bytes apart): what it saves is why it exists.
func TestPackedChannelIsSmall(t *testing.T) {
	if p := unsafe.Sizeof(PackedChannel{}); p > 128 {
		t.Fatalf("PackedChannel is %d bytes, over the 128 a map keeps in its slot", p)
	}
}

func FuzzPack(f *testing.F) {
	f.Add("1700000000.1", "PJSIP/100-1", "", "5551234", int64(1700000000), true)
	f.Add("1700000000.2", "Local/100@agents-00000001;1", "1700000000.1", "", int64(0), true)
	f.Fuzz(func(t *testing.T, id, name, linked, num string, created int64, local bool) {
		ch := Channel{ID: id, Name: name, LinkedID: linked, CallerNum: num, Exten: num + id, Local: local}
		if created != 0 { // a channel a list named; nil for one known from its events
			ch.Listed = &Listed{CreatedAt: time.Unix(created, 0).UTC(), BridgedWith: name + linked}
		}
		if got := Pack(ch).Unpack(); !reflect.DeepEqual(got, ch) {
			t.Fatalf("unpacked %+v, want %+v", got, ch)
		}
		if got := Pack(ch).ID(); got != id {
			t.Fatalf("ID() = %q, want %q", got, id)
		}
	})
}
