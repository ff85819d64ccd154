package ami

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctibridge/ctibridge/bridge"
)

// Every event name the Mapper switches on (in Add and translate) is
// in mappedEvents, and nothing else is: the reader drops the rest unparsed.
func TestMappedEventsListsEveryCase(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "mapper.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	cased := map[string]bool{}
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || (fn.Name.Name != "Add" && fn.Name.Name != "translate") {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			sw, ok := n.(*ast.SwitchStmt)
			if !ok {
				return true
			}
			if id, ok := sw.Tag.(*ast.Ident); !ok || id.Name != "name" {
				return true
			}
			for _, s := range sw.Body.List {
				for _, e := range s.(*ast.CaseClause).List {
					if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, _ := strconv.Unquote(lit.Value)
						cased[v] = true
					}
				}
			}
			return true
		})
	}
	if len(cased) < 20 {
		t.Fatalf("found only %d cases: the test no longer finds the Mapper's switches", len(cased))
	}
	if !reflect.DeepEqual(cased, mappedEvents) {
		for k := range cased {
			if !mappedEvents[k] {
				t.Errorf("the Mapper reads %s but mappedEvents lacks it: the reader would drop it", k)
			}
		}
		for k := range mappedEvents {
			if !cased[k] {
				t.Errorf("mappedEvents has %s, which the Mapper no longer reads", k)
			}
		}
	}
}

// chanSink records what a Mapper hands the engine.
type chanSink struct {
	evs  []bridge.ChannelEvent
	snap [][]bridge.Channel
}

func (s *chanSink) LinkUp(int)     {}
func (s *chanSink) LinkDown(error) {}
func (s *chanSink) ChannelEvents(evs []bridge.ChannelEvent) {
	for _, ev := range evs {
		ev.At = time.Time{} // the reading time where a capture has no Timestamp
		s.evs = append(s.evs, ev)
	}
}
func (s *chanSink) Snapshot(live []bridge.Channel, _ time.Time) { s.snap = append(s.snap, live) }

// On every capture, dropping the frames the reader calls unwanted changes
// nothing the Mapper hands the engine, and drops a good share of them.
func TestUnwantedFramesChangeNothing(t *testing.T) {
	paths, _ := filepath.Glob("testdata/sip/*.ami")
	more, _ := filepath.Glob("amitest/captures/*.ami")
	paths = append(paths, more...)
	total, dropped := 0, 0
	for _, p := range paths {
		if strings.HasSuffix(p, ".sent.ami") {
			continue
		}
		frs := frames(t, strings.TrimSuffix(p, ".ami"))
		all, kept := &chanSink{}, &chanSink{}
		mAll := NewMapper(context.Background(), all, nil, nil, "CALL_DIRECTION")
		mKept := NewMapper(context.Background(), kept, nil, nil, "CALL_DIRECTION")
		for _, fr := range frs {
			m, err := Parse([]byte(fr))
			if err != nil {
				continue
			}
			mAll.Message(m)
			total++
			if route(mKept, []byte(fr)) == routeDrop {
				dropped++
				continue
			}
			mKept.Message(m)
		}
		if !reflect.DeepEqual(all, kept) {
			t.Errorf("%s: the engine gets other events when unwanted frames are dropped", p)
		}
	}
	if dropped == 0 || dropped*4 < total {
		t.Errorf("dropped %d of %d frames: the filter drops less than a quarter", dropped, total)
	}
	t.Logf("dropped %d of %d frames unparsed", dropped, total)
}

// FuzzPeekEvent: a frame the reader drops unparsed is one the parser
// refuses, or one whose Event (and Variable) the Mapper does not read and
// that answers no action of ours.
func FuzzPeekEvent(f *testing.F) {
	seedCaptures(f, false)
	f.Add([]byte("Event: VarSet\r\nVariable: CALL_DIRECTION\r\nValue: in\r\n\r\n"), uint16(0))
	f.Add([]byte("event:  Cdr \r\nactionid: 7\r\n\r\n"), uint16(0))
	m := NewMapper(context.Background(), &chanSink{}, nil, nil, "CALL_DIRECTION")
	f.Fuzz(func(t *testing.T, data []byte, _ uint16) {
		if route(m, data) != routeDrop {
			return
		}
		msg, err := Parse(data)
		if err != nil {
			return
		}
		if header(msg, "ActionID") != "" {
			t.Fatalf("dropped a frame with an ActionID: %q", data)
		}
		if m.WantsEvent(msg.Field("Event"), msg.Field("Variable")) {
			t.Fatalf("dropped an event the Mapper reads (%q, %q): %q", msg.Field("Event"), msg.Field("Variable"), data)
		}
	})
}

// FuzzRoute: a frame the reader queues unparsed is an event no waiter can
// want (the parser finds an Event and no ActionID), and a frame it drops is
// one the Handler would not read (FuzzPeekEvent).
func FuzzRoute(f *testing.F) {
	seedCaptures(f, false)
	f.Add([]byte("Event: Newchannel\r\nActionID: 3\r\n\r\n"), uint16(0))
	f.Add([]byte("Response: Success\r\nActionID: 3\r\n\r\n"), uint16(0))
	f.Add([]byte("EVENT :x\r\nActionID : 3\r\n\r\n"), uint16(0))
	f.Add([]byte("Event: Newchannel\r\nActionID : 3\r\n\r\n"), uint16(0)) // a padded name, as the tolerant parser reads it
	f.Add([]byte("Event: CoreShowChannel\r\n ActionID\t: 3\r\n\r\n"), uint16(0))
	m := NewMapper(context.Background(), &chanSink{}, nil, nil, "CALL_DIRECTION")
	f.Fuzz(func(t *testing.T, data []byte, _ uint16) {
		for _, w := range []EventWanter{m, nil} {
			if route(w, data) != routeQueue {
				continue
			}
			msg, err := Parse(data)
			if err != nil {
				continue // the consumer counts and skips it, as the reader did
			}
			if header(msg, "ActionID") != "" {
				t.Fatalf("queued unparsed a frame with an ActionID (a waiter's): %q", data)
			}
			if header(msg, "Event") == "" {
				t.Fatalf("queued unparsed a frame with no Event: %q", data)
			}
		}
	})
}
