package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ctibridge/ctibridge/bridge"
	"github.com/gofiber/fiber/v2"
)

// decode reads the body as one JSON object into v, refusing unknown fields
// (a misspelt field must not be silently ignored). An empty body is an
// empty object unless required.
func decode(c *fiber.Ctx, v any, required bool) error {
	return decodeJSON(c.Body(), c.Get(fiber.HeaderContentType), v, required)
}

// checkContentType refuses a write whose body is not declared JSON, before
// the route and its key check: a page in a browser can send text/plain,
// form or multipart bodies to any address without asking first (a "simple"
// request, no-cors), but never application/json. The routes' own decode
// checks the same.
func (s *Server) checkContentType(c *fiber.Ctx) error {
	if unsafeMethod(c.Method()) && len(c.Body()) > 0 {
		if err := checkJSONType(c.Get(fiber.HeaderContentType)); err != nil {
			return err
		}
	}
	return c.Next()
}

// checkJSONType accepts application/json, with parameters (a charset, if
// any, must be utf-8), and nothing else: an allowlist of one.
func checkJSONType(ct string) error {
	refuse := func(why string) error {
		return &httpError{status: fiber.StatusUnsupportedMediaType, code: codeUnsupportedMedia, field: "Content-Type",
			detail: "the body must be JSON sent with Content-Type: application/json; got " + why}
	}
	if strings.TrimSpace(ct) == "" {
		return refuse("no Content-Type")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != fiber.MIMEApplicationJSON {
		return refuse("Content-Type: " + quoteHeader(ct))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return refuse("Content-Type: " + quoteHeader(ct) + " (JSON is UTF-8)")
	}
	return nil
}

// decodeJSON is decode without fiber, so the fuzz target reaches it.
func decodeJSON(raw []byte, ct string, v any, required bool) error {
	body := bytes.TrimSpace(raw)
	if len(body) == 0 {
		if required {
			return bridge.FieldError("body", "is required: a JSON object")
		}
		return nil
	}
	if err := checkJSONType(ct); err != nil {
		return err
	}
	if err := checkNames(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, v)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bridge.FieldError("body", "must hold a single JSON object")
	}
	return nil
}

// maxDepth bounds how deeply a request body nests objects and arrays. No
// request needs more than three levels; encoding/json's own bound (10,000)
// fails with a syntax error, which would call a valid body "not valid JSON".
const maxDepth = 32

// checkNames walks the body's tokens and refuses a name given twice in one
// object, also when spelt in another case: encoding/json matches names
// without regard to case and keeps the last, so {"agent":"100","Agent":"101"}
// would dial 101 and say nothing. Syntax errors are left to the decoder,
// which names them.
func checkNames(body []byte) error {
	type level struct {
		path  string            // the object's field path, "" at the top
		names map[string]string // folded name (foldName) → as given; nil for an array
		key   string            // the field whose value comes next
	}
	var stack []level
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // io.EOF, or a syntax error the decoder will name
		}
		top := len(stack) - 1
		inObject := top >= 0 && stack[top].names != nil
		if name, ok := tok.(string); ok && inObject && stack[top].key == "" {
			field, folded := joinPath(stack[top].path, name), foldName(name)
			if first, dup := stack[top].names[folded]; dup && name != "" { // "" is the decoder's to refuse
				if first == name {
					return bridge.FieldError(field, "is given twice")
				}
				return bridge.FieldError(field, "is given twice, also as %q (names are matched without regard to case)", first)
			}
			stack[top].names[folded] = name
			stack[top].key = name
			continue
		}
		path := ""
		if top >= 0 {
			path = stack[top].path
			if inObject {
				path = joinPath(path, stack[top].key)
				stack[top].key = ""
			}
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) == maxDepth {
				return bridge.FieldError("body", "nests deeper than %d levels", maxDepth)
			}
			l := level{path: path}
			if tok == json.Delim('{') {
				l.names = map[string]string{}
			}
			stack = append(stack, l)
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:top]
		}
	}
}

// foldName folds a name as encoding/json does to match it to a field
// (bytes.EqualFold): "variableſ" (long s) names "variables" too.
func foldName(name string) string {
	var b strings.Builder
	for _, r := range name {
		if r < utf8.RuneSelf {
			b.WriteByte(byte(unicode.ToUpper(r)))
			continue
		}
		b.WriteRune(unicode.ToUpper(unicode.ToLower(r)))
	}
	return b.String()
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func jsonError(err error, v any) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF):
		return bridge.FieldError("body", "is not valid JSON")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return bridge.FieldError("body", "must be %s", kindName(typ.Type))
		}
		// encoding/json names a map or array field but gives the type of
		// its element: "variables must be a string" would mislead.
		if ft, ok := jsonFieldType(v, field); ok && (ft.Kind() == reflect.Map || ft.Kind() == reflect.Slice) {
			what := map[reflect.Kind]string{reflect.Map: "an object", reflect.Slice: "an array"}[ft.Kind()]
			return bridge.FieldError(field, "must be %s of %s", what, plural(kindName(ft.Elem())))
		}
		return bridge.FieldError(field, "must be %s", kindName(typ.Type))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		if name == "" {
			return bridge.FieldError("body", `has a field with an empty name ("")`)
		}
		return bridge.FieldError(name, "is not a known field")
	}
	return bridge.FieldError("body", "is not a valid request: %v", err)
}

// jsonFieldType finds the type of a top-level field of the struct v points
// to by its JSON name.
func jsonFieldType(v any, name string) (reflect.Type, bool) {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil, false
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == name || tag == "" && f.Name == name {
			return f.Type, true
		}
	}
	return nil, false
}

// plural turns "a string" into "strings".
func plural(kind string) string {
	kind = strings.TrimPrefix(strings.TrimPrefix(kind, "an "), "a ")
	if kind == "true or false" {
		return "booleans"
	}
	return kind + "s"
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Bool:
		return "true or false"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice:
		return "an array"
	}
	return "a " + t.String()
}

// onlyQuery refuses a query parameter the route does not take, or one
// given twice: a misspelt filter (?limt=5, ?agnt=100) would otherwise be
// ignored and the answer silently unfiltered, and of two values one would
// be dropped.
func onlyQuery(c *fiber.Ctx, names ...string) error {
	var err error
	seen := map[string]bool{}
	c.Context().QueryArgs().VisitAll(func(k, _ []byte) {
		name := string(k)
		switch {
		case err != nil:
		case !slices.Contains(names, name):
			err = bridge.FieldError(name, "is not a query parameter of this route; it takes %s", strings.Join(names, ", "))
		case seen[name]:
			err = bridge.FieldError(name, "is given twice")
		}
		seen[name] = true
	})
	return err
}

// queryTime parses an RFC 3339 query parameter; zero when absent.
func queryTime(c *fiber.Ctx, name string) (time.Time, error) {
	return parseTime(name, c.Query(name))
}

// Times the API takes lie in [minTime, maxTime): the store keeps unix
// nanoseconds, which overflow past 2262, and a far year turned a filter
// into "everything".
var (
	minTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// parseTime parses an RFC 3339 time; zero when empty.
func parseTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, bridge.FieldError(name, "must be an RFC 3339 time such as 2026-11-22T09:00:00Z")
	}
	if t.Before(minTime) || !t.Before(maxTime) {
		return time.Time{}, bridge.FieldError(name, "must be from 1970-01-01T00:00:00Z to before 2200-01-01T00:00:00Z, got %s", v)
	}
	return t, nil
}

// queryLimit parses a page size in [1, max], def when absent.
func queryLimit(c *fiber.Ctx, def, max int) (int, error) {
	v := c.Query("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, bridge.FieldError("limit", "must be an integer from 1 to %d", max)
	}
	return n, nil
}

// accepted answers 202 with a JSON body.
func accepted(c *fiber.Ctx, body any) error {
	return c.Status(fiber.StatusAccepted).JSON(body)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("http: %v", err))
	}
	return b
}

// param is a route parameter as a string of its own: fiber's points into
// a buffer reused by the next request, and services keep what they get.
func param(c *fiber.Ctx, name string) string { return strings.Clone(c.Params(name)) }
