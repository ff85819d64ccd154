package template

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
	"unicode"

	"github.com/ctibridge/ctibridge/bridge"
)

// Data is what a template renders: the event's fields (.Type, .Call,
// .Agent, .ConversationID … as Go names, see bridge.Event) and .State, the
// values captured from earlier answers of the same call.
type Data struct {
	bridge.Event
	State map[string]string
}

// escName is the escaper appended to every printing action. It is not
// meant to be called by hand (doing so only escapes twice).
const escName = "_esc"

// where is where a printed value lands.
type where int

const (
	ctxJSON where = iota
	ctxForm
	ctxXML
	ctxURL
	ctxHeader
	ctxNone // the when condition: prints nothing that is sent
)

// Encodings are the body encodings a template may use.
var Encodings = map[string]string{
	"json": "application/json",
	"form": "application/x-www-form-urlencoded",
	"xml":  "application/xml",
}

// Methods are the allowed HTTP methods.
var Methods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// part is one parsed template field.
type part struct {
	field string // request.body, request.url, …
	ctx   where
	t     *template.Template
}

// FuncNames are the helpers a template may call (besides text/template's
// own: eq, ne, and, or, not, index, len, printf …).
var FuncNames = []string{"e164", "digits", "lastN", "rfc3339", "epochms", "timefmt", "inzone", "lookup", "secret", "default", "upper", "lower"}

// parseFuncs are stand-ins for parsing: the real ones are bound per render.
func parseFuncs() template.FuncMap {
	fm := template.FuncMap{escName: func(v any) string { return "" }}
	for name, f := range staticFuncs() {
		fm[name] = f
	}
	fm["lookup"] = func(m, k string) (string, error) { return "", nil }
	fm["secret"] = func(n string) (string, error) { return "", nil }
	return fm
}

// parsePart parses src as field's template and appends the escaper for ctx
// to every action that prints.
func parsePart(field, src string, ctx where) (*part, error) {
	t, err := template.New(field).Option("missingkey=error").Funcs(parseFuncs()).Parse(src)
	if err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "template: "))
	}
	if len(t.Templates()) > 1 {
		return nil, errors.New("define and block are not supported: write one template")
	}
	if t.Tree == nil || t.Tree.Root == nil {
		t = template.Must(template.New(field).Parse(""))
	} else if ctx != ctxNone {
		if err := addEscaper(t.Tree, t.Tree.Root); err != nil {
			return nil, err
		}
	}
	return &part{field: field, ctx: ctx, t: t}, nil
}

// addEscaper makes every printing action end in the escaper, as
// html/template does: the author never has to remember it.
func addEscaper(tree *parse.Tree, n parse.Node) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := addEscaper(tree, c); err != nil {
				return err
			}
		}
	case *parse.ActionNode:
		if len(n.Pipe.Decl) > 0 {
			return nil // {{$x := …}} prints nothing
		}
		n.Pipe.Cmds = append(n.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: n.Pos,
			Args: []parse.Node{parse.NewIdentifier(escName).SetTree(tree).SetPos(n.Pos)}})
	case *parse.IfNode:
		return branches(tree, n.List, n.ElseList)
	case *parse.RangeNode:
		return branches(tree, n.List, n.ElseList)
	case *parse.WithNode:
		return branches(tree, n.List, n.ElseList)
	case *parse.TemplateNode:
		loc, _ := tree.ErrorContext(n)
		return fmt.Errorf("%s: {{template}} is not supported: write one template", loc)
	}
	return nil
}

func branches(tree *parse.Tree, a, b *parse.ListNode) error {
	if err := addEscaper(tree, a); err != nil {
		return err
	}
	if b != nil {
		return addEscaper(tree, b)
	}
	return nil
}

// renderer is one render of one part: the escaper sees what was written so
// far, so it knows whether a value lands inside a JSON string, an XML
// attribute, the URL's path or query.
type renderer struct {
	ctx     where
	out     bytes.Buffer
	scanned int
	// JSON: inside a string, after a backslash.
	inStr, esc bool
	// XML: where the scan is.
	xmlState int
	quote    byte
}

const (
	xmlText = iota
	xmlTag
	xmlQuote
	xmlComment
	xmlCDATA
)

// scan brings the context up to what has been written.
func (r *renderer) scan() {
	b := r.out.Bytes()
	for i := r.scanned; i < len(b); i++ {
		c := b[i]
		switch r.ctx {
		case ctxJSON:
			switch {
			case r.inStr && r.esc:
				r.esc = false
			case r.inStr && c == '\\':
				r.esc = true
			case c == '"':
				r.inStr = !r.inStr
			}
		case ctxXML:
			switch r.xmlState {
			case xmlText:
				switch {
				case bytes.HasPrefix(b[i:], []byte("<!--")):
					r.xmlState, i = xmlComment, i+3
				case bytes.HasPrefix(b[i:], []byte("<![CDATA[")):
					r.xmlState, i = xmlCDATA, i+8
				case c == '<':
					r.xmlState = xmlTag
				}
			case xmlTag:
				switch c {
				case '"', '\'':
					r.xmlState, r.quote = xmlQuote, c
				case '>':
					r.xmlState = xmlText
				}
			case xmlQuote:
				if c == r.quote {
					r.xmlState = xmlTag
				}
			case xmlComment:
				if bytes.HasPrefix(b[i:], []byte("-->")) {
					r.xmlState, i = xmlText, i+2
				}
			case xmlCDATA:
				if bytes.HasPrefix(b[i:], []byte("]]>")) {
					r.xmlState, i = xmlText, i+2
				}
			}
		}
	}
	r.scanned = len(b)
}

// escape is the escaper: v printed so that it stays a value where it lands.
func (r *renderer) escape(v any) (string, error) {
	r.scan()
	switch r.ctx {
	case ctxJSON:
		if r.inStr && r.esc {
			return "", errors.New(`a value right after a backslash in a JSON string would start an escape: remove the \`)
		}
		if r.inStr {
			b, _ := json.Marshal(text(v))
			return string(b[1 : len(b)-1]), nil
		}
		return jsonValue(v)
	case ctxForm:
		return url.QueryEscape(text(v)), nil
	case ctxXML:
		switch r.xmlState {
		case xmlTag:
			return "", errors.New("a value inside a tag must be in an attribute's quotes (name=\"{{…}}\")")
		case xmlComment, xmlCDATA:
			return "", errors.New("a value inside an XML comment or CDATA section is not allowed: print it as element text or an attribute")
		}
		var sb strings.Builder
		_ = xml.EscapeText(&sb, []byte(text(v)))
		return sb.String(), nil
	case ctxURL:
		s := text(v)
		if bytes.ContainsAny(r.out.Bytes(), "?#") {
			return url.QueryEscape(s), nil
		}
		if s == "." || s == ".." { // a path segment that would climb
			return strings.ReplaceAll(s, ".", "%2E"), nil
		}
		return url.PathEscape(s), nil
	case ctxHeader:
		return strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return ' '
			}
			return r
		}, text(v)), nil
	}
	return text(v), nil
}

// text is v as the text a template shows: times in RFC 3339, nil as "",
// numbers and strings as they are, structures as JSON.
func text(v any) string {
	v = deref(v)
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case fmt.Stringer:
		return x.String()
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return rv.String()
	case reflect.Struct, reflect.Map, reflect.Slice:
		b, err := json.Marshal(v)
		if err == nil {
			return string(b)
		}
	}
	return fmt.Sprint(v)
}

func deref(v any) any {
	rv := reflect.ValueOf(v)
	for rv.IsValid() && rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil
		}
		rv = rv.Elem()
	}
	if !rv.IsValid() {
		return nil
	}
	return rv.Interface()
}

// jsonValue is v as a whole JSON value (outside a string): null, a number,
// true/false, a quoted string, an object.
func jsonValue(v any) (string, error) {
	v = deref(v)
	if t, ok := v.(time.Time); ok {
		v = t.UTC().Format(time.RFC3339)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("cannot print %T as JSON: %v", v, err)
	}
	return string(b), nil
}

// exec renders p for d. funcs are the per-call helpers (lookup, secret).
func (p *part) exec(d *Data, funcs template.FuncMap) (string, error) {
	r := &renderer{ctx: p.ctx}
	t, err := p.t.Clone()
	if err != nil {
		return "", err
	}
	fm := template.FuncMap{escName: r.escape}
	for k, f := range funcs {
		fm[k] = f
	}
	t.Funcs(fm)
	if err := t.Execute(&r.out, d); err != nil {
		return "", errors.New(strings.TrimPrefix(err.Error(), "template: "))
	}
	return r.out.String(), nil
}

// checkBody makes sure a rendered body is what its encoding says: the
// escaping makes a value unable to break it, so a failure here is the
// template's own text.
func checkBody(enc string, body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	switch enc {
	case "json":
		if !json.Valid(body) {
			var v any
			err := json.Unmarshal(body, &v)
			return fmt.Errorf("the rendered body is not valid JSON: %v", err)
		}
	case "xml":
		dec := xml.NewDecoder(bytes.NewReader(body))
		depth, roots := 0, 0
		for {
			tok, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("the rendered body is not well-formed XML: %v", err)
			}
			switch tok.(type) {
			case xml.StartElement:
				if depth == 0 {
					roots++
				}
				depth++
			case xml.EndElement:
				depth--
			}
		}
		if roots != 1 || depth != 0 {
			return fmt.Errorf("the rendered body is not one XML document (%d root elements)", roots)
		}
	case "form":
		if _, err := url.ParseQuery(string(body)); err != nil {
			return fmt.Errorf("the rendered body is not form-encoded: %v", err)
		}
	}
	return nil
}

// staticFuncs are the helpers that need nothing of the call.
func staticFuncs() template.FuncMap {
	return template.FuncMap{
		"e164":    E164,
		"digits":  func(v any) string { return digits(text(v)) },
		"lastN":   func(n int, v any) string { s := text(v); return s[max(0, len(s)-n):] },
		"rfc3339": func(v any) (string, error) { return timeFmt(time.RFC3339, v) },
		// A number (not text), so JSON gets "ms": 1767366245000; a missing
		// time is nil (null in JSON, "" elsewhere).
		"epochms": func(v any) (any, error) {
			t, ok, err := toTime(v)
			if err != nil || !ok {
				return nil, err
			}
			return t.UnixMilli(), nil
		},
		"timefmt": timeFmt,
		"inzone": func(zone string, v any) (any, error) {
			loc, err := time.LoadLocation(zone)
			if err != nil {
				return nil, fmt.Errorf("inzone: unknown time zone %q", zone)
			}
			t, ok, err := toTime(v)
			if err != nil || !ok {
				return nil, err
			}
			return t.In(loc), nil
		},
		"default": func(def, v any) any {
			if text(v) == "" {
				return def
			}
			return v
		},
		"upper": func(v any) string { return strings.ToUpper(text(v)) },
		"lower": func(v any) string { return strings.ToLower(text(v)) },
	}
}

func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// E164 is a number in E.164 with cc as the country code of numbers dialled
// nationally: +… stays (digits only), 00… becomes +…, a national number
// (a leading 0 is the trunk prefix) gets +cc. Numbers of 6 digits or fewer
// are extensions and are returned as digits.
func E164(cc string, v any) (string, error) {
	cc = digits(cc)
	if cc == "" || len(cc) > 3 {
		return "", fmt.Errorf("e164: %q is not a country code (1 to 3 digits, e.g. \"49\")", cc)
	}
	s := strings.TrimSpace(text(v))
	d := digits(s)
	switch {
	case d == "":
		return "", nil
	case strings.HasPrefix(s, "+"):
		return "+" + d, nil
	case strings.HasPrefix(d, "00"):
		return "+" + d[2:], nil
	case len(d) <= 6:
		return d, nil
	case strings.HasPrefix(d, "0"):
		return "+" + cc + d[1:], nil
	case strings.HasPrefix(d, cc) && len(d) > 10:
		return "+" + d, nil // already carries the country code
	}
	return "+" + cc + d, nil
}

func toTime(v any) (time.Time, bool, error) {
	switch x := deref(v).(type) {
	case nil:
		return time.Time{}, false, nil
	case time.Time:
		return x, !x.IsZero(), nil
	case string:
		if x == "" {
			return time.Time{}, false, nil
		}
		t, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("%q is not an RFC 3339 time", x)
		}
		return t, true, nil
	}
	return time.Time{}, false, fmt.Errorf("%T is not a time", v)
}

// timeFmt formats a time with a Go layout; a missing time is "".
func timeFmt(layout string, v any) (string, error) {
	t, ok, err := toTime(v)
	if err != nil || !ok {
		return "", err
	}
	return t.Format(layout), nil
}

// Path is a simple JSON path: keys separated by dots, [n] for an array
// element (data.id, result.items[0].id).
type Path []any

// ParsePath reads a JSON path.
func ParsePath(s string) (Path, error) {
	if s == "" {
		return nil, errors.New("empty path")
	}
	var p Path
	for _, seg := range strings.Split(s, ".") {
		key, rest, _ := strings.Cut(seg, "[")
		if key == "" && rest == "" {
			return nil, fmt.Errorf("%q: empty key", s)
		}
		if key != "" {
			p = append(p, key)
		}
		for rest != "" {
			n, after, ok := strings.Cut(rest, "]")
			i, err := strconv.Atoi(n)
			if !ok || err != nil || i < 0 {
				return nil, fmt.Errorf("%q: write an index as [0]", s)
			}
			p = append(p, i)
			if after == "" {
				break
			}
			if !strings.HasPrefix(after, "[") {
				return nil, fmt.Errorf("%q: unexpected %q after ]", s, after)
			}
			rest = after[1:]
		}
	}
	return p, nil
}

// Get returns the value at p in a decoded JSON document, as text.
func (p Path) Get(doc any) (string, bool) {
	cur := doc
	for _, seg := range p {
		switch s := seg.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				return "", false
			}
			if cur, ok = m[s]; !ok {
				return "", false
			}
		case int:
			a, ok := cur.([]any)
			if !ok || s >= len(a) {
				return "", false
			}
			cur = a[s]
		}
	}
	switch x := cur.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false // an object or array is no id
}
