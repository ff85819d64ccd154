package template_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/ctibridge/ctibridge/connectors/template"
)

// fuzzTemplates put the same three event fields in every place a value can
// land in each encoding: inside a string or attribute, as a bare value or
// element text, in the URL's path and query.
var fuzzTemplates = map[string]string{
	"json": `{"name": "{{.Call.Caller.Name}}", "bare": {{.Call.Caller.Name}}, "msg": "from {{.Call.Caller.Number}} in {{.Call.Queue}}", "queue": {{.Call.Queue}}, "n": [{{.Call.Caller.Number}}]}`,
	"xml":  `<call name="{{.Call.Caller.Name}}" q='{{.Call.Queue}}'><from>{{.Call.Caller.Number}}</from><msg>{{.Call.Caller.Name}} / {{.Call.Queue}}</msg></call>`,
	"form": "name={{.Call.Caller.Name}}\n&number={{.Call.Caller.Number}}\n&queue={{.Call.Queue}}",
}

// Any value of an event's fields leaves the body's shape as the template
// wrote it: JSON stays valid with the same keys, XML parses with the same
// elements and attributes, a form decodes to the same keys with the values
// intact, the URL keeps its host, path segments and query keys.
func FuzzRenderKeepsEncoding(f *testing.F) {
	for _, s := range hostile {
		f.Add(s, s, s)
	}
	tps := map[string]*template.Template{}
	for enc, body := range fuzzTemplates {
		spec := template.Spec{On: []string{"call.ringing"}, Request: template.Request{
			URL: "https://crm.example.com/calls/{{.Call.Caller.Name}}/x?q={{.Call.Queue}}&n={{.Call.Caller.Number}}", Encoding: enc, Body: body}}
		tp, err := template.Compile("fuzz-"+enc, spec, nil)
		if err != nil {
			f.Fatal(err)
		}
		tps[enc] = tp
	}
	f.Fuzz(func(t *testing.T, name, number, queue string) {
		d := template.Sample("call.ringing")
		d.Call.Caller.Name, d.Call.Caller.Number, d.Call.Queue = name, number, queue
		for enc, tp := range tps {
			r, err := tp.Render(d)
			if err != nil {
				t.Fatalf("%s: %v", enc, err)
			}
			u, err := url.Parse(r.URL)
			if err != nil || u.Host != "crm.example.com" || len(strings.Split(u.EscapedPath(), "/")) != 4 ||
				!strings.HasPrefix(u.EscapedPath(), "/calls/") || !strings.HasSuffix(u.EscapedPath(), "/x") {
				t.Fatalf("URL %q (%v)", r.URL, err)
			}
			if q := u.Query(); len(q) != 2 || q.Get("q") != queue || q.Get("n") != number {
				t.Fatalf("URL query %q", r.URL)
			}
			switch enc {
			case "json":
				var m map[string]any
				if err := json.Unmarshal(r.Body, &m); err != nil {
					t.Fatalf("JSON %v: %s", err, r.Body)
				}
				keys := make([]string, 0, len(m))
				for k := range m {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				v := func(s string) string { return string([]rune(s)) } // json.Marshal: U+FFFD per invalid byte
				if strings.Join(keys, ",") != "bare,msg,n,name,queue" || m["name"] != v(name) || m["bare"] != v(name) ||
					m["queue"] != v(queue) || m["msg"] != v("from "+number+" in "+queue) {
					t.Fatalf("JSON %s", r.Body)
				}
			case "xml":
				if got := xmlShape(t, r.Body); got != "call[name q] from[] msg[]" {
					t.Fatalf("XML shape %s: %s", got, r.Body)
				}
			case "form":
				q, err := url.ParseQuery(string(r.Body))
				if err != nil || len(q) != 3 || q.Get("name") != name || q.Get("number") != number || q.Get("queue") != queue {
					t.Fatalf("form %q (%v)", r.Body, err)
				}
			}
		}
	})
}

// xmlShape is the elements of a document with their attribute names.
func xmlShape(t *testing.T, body []byte) string {
	dec := xml.NewDecoder(bytes.NewReader(body))
	var out []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return strings.Join(out, " ")
		}
		if err != nil {
			t.Fatalf("XML %v: %s", err, body)
		}
		if se, ok := tok.(xml.StartElement); ok {
			var attrs []string
			for _, a := range se.Attr {
				attrs = append(attrs, a.Name.Local)
			}
			out = append(out, se.Name.Local+"["+strings.Join(attrs, " ")+"]")
		}
	}
}
