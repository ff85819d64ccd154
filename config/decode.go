package config

import (
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Errors is every problem found in one load, in the order found; the
// admin fixes them all in one round instead of one per start.
type Errors []*Error

func (es Errors) Error() string {
	if len(es) == 1 {
		return es[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "config: %d problems:", len(es))
	for _, e := range es {
		fmt.Fprintf(&b, "\n  %s: %s", e.Key, e.Reason)
	}
	return b.String()
}

// Unwrap lets errors.As find each *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// collector keeps the first problem of each key: a value that failed to
// decode is not reported again by the checks that follow.
type collector struct {
	errs Errors
	seen map[string]bool
}

func (c *collector) add(e *Error) {
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	if c.seen[e.Key] {
		return
	}
	c.seen[e.Key] = true
	c.errs = append(c.errs, e)
}

func (c *collector) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	return c.errs
}

var durationType = reflect.TypeFor[time.Duration]()

// decode sets v from raw (what YAML, the environment or --set gave for
// key), reporting every value that would mean something else than the
// admin wrote: a duration without a unit, a fraction for an integer, a
// word for a boolean, an unknown key.
func decode(key string, raw any, v reflect.Value, c *collector) {
	bad := func(format string, a ...any) { c.add(&Error{Key: key, Reason: fmt.Sprintf(format, a...)}) }
	if raw == nil {
		return // "key:" with nothing after it keeps the default
	}
	if v.Type() == durationType {
		d, err := decodeDuration(raw)
		if err != nil {
			bad("%s", err)
			return
		}
		v.SetInt(int64(d))
		return
	}
	switch v.Kind() {
	case reflect.String:
		switch x := raw.(type) {
		case string:
			v.SetString(x)
		case int, int64, uint64, float64, bool:
			// YAML reads secret: 1234 as a number; it is the text written.
			v.SetString(fmt.Sprint(x))
		default:
			bad("is a %s; write a single value", kindName(raw))
		}
	case reflect.Bool:
		switch x := raw.(type) {
		case bool:
			v.SetBool(x)
		case string:
			switch strings.ToLower(strings.TrimSpace(x)) {
			case "true":
				v.SetBool(true)
			case "false":
				v.SetBool(false)
			default:
				bad("%q is not a boolean; write true or false", x)
			}
		default:
			bad("%s is not a boolean; write true or false", show(raw))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var n int64
		switch x := raw.(type) {
		case int:
			n = int64(x)
		case int64:
			n = x
		case uint64:
			if x > math.MaxInt64 {
				bad("%d is too large", x)
				return
			}
			n = int64(x)
		case float64:
			if math.IsInf(x, 0) || math.IsNaN(x) || math.Abs(x) > 1<<53 {
				bad("%v is too large", x)
				return
			}
			if x != math.Trunc(x) {
				bad("%v is not a whole number; write %d or %d", x, int64(math.Floor(x)), int64(math.Ceil(x)))
				return
			}
			n = int64(x)
		case string:
			i, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
			if err != nil {
				if f, ferr := strconv.ParseFloat(strings.TrimSpace(x), 64); ferr == nil && f != math.Trunc(f) {
					bad("%s is not a whole number; write %d or %d", x, int64(math.Floor(f)), int64(math.Ceil(f)))
				} else {
					bad("%q is not a whole number; write digits, e.g. 10", x)
				}
				return
			}
			n = i
		default:
			bad("%s is not a whole number; write digits, e.g. 10", show(raw))
			return
		}
		if v.OverflowInt(n) {
			bad("%d is too large", n)
			return
		}
		v.SetInt(n)
	case reflect.Float32, reflect.Float64:
		switch x := raw.(type) {
		case int:
			v.SetFloat(float64(x))
		case float64:
			v.SetFloat(x)
		case string:
			f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
			if err != nil {
				bad("%q is not a number", x)
				return
			}
			v.SetFloat(f)
		default:
			bad("%s is not a number", show(raw))
		}
	case reflect.Slice:
		var items []any
		switch x := raw.(type) {
		case []any:
			items = x
		case []string: // from the environment
			for _, s := range x {
				items = append(items, s)
			}
		case string:
			// --set and the environment give a list as a,b,c.
			if strings.TrimSpace(x) != "" {
				for _, s := range strings.Split(x, ",") {
					items = append(items, strings.TrimSpace(s))
				}
			}
		default:
			bad("%s is not a list; write [a, b] or one item per line starting with -", show(raw))
			return
		}
		out := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, it := range items {
			decode(fmt.Sprintf("%s[%d]", key, i), it, out.Index(i), c)
		}
		v.Set(out)
	case reflect.Map:
		m, ok := raw.(map[string]any)
		if !ok || v.Type().Key().Kind() != reflect.String {
			bad("%s is not a mapping; write key: value lines under it", show(raw))
			return
		}
		out := reflect.MakeMapWithSize(v.Type(), len(m))
		for _, k := range sortedKeys(m) {
			ev := reflect.New(v.Type().Elem()).Elem()
			decode(key+"."+k, m[k], ev, c)
			out.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), ev)
		}
		v.Set(out)
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		decode(key, raw, v.Elem(), c)
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			bad("%s is not a section; write its keys on the lines under it", show(raw))
			return
		}
		fields := map[string]int{}
		for i := range v.NumField() {
			if tag := v.Type().Field(i).Tag.Get("koanf"); tag != "" && tag != "-" {
				fields[tag] = i
			}
		}
		for _, k := range sortedKeys(m) {
			sub := k
			if key != "" {
				sub = key + "." + k
			}
			i, ok := fields[k]
			if !ok {
				c.add(&Error{Key: sub, Reason: "unknown key (check the spelling; see README's config reference)"})
				continue
			}
			decode(sub, m[k], v.Field(i), c)
		}
	default:
		bad("cannot be set from the config (%s)", v.Kind())
	}
}

// decodeDuration accepts only a value with a unit: 20 alone would be 20
// nanoseconds to Go, which no one means.
func decodeDuration(raw any) (time.Duration, error) {
	var s string
	switch x := raw.(type) {
	case string:
		s = strings.TrimSpace(x)
	case int, int64, uint64, float64:
		s = fmt.Sprint(x)
	default:
		return 0, fmt.Errorf("%s is not a duration; write e.g. 10s, 5m or 72h", show(raw))
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		if s == "0" {
			return 0, nil
		}
		return 0, fmt.Errorf("%s has no unit; write %ss", s, s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; write e.g. 10s, 5m or 72h (units: ms, s, m, h)", s)
	}
	return d, nil
}

// sortedKeys gives a map's keys in order, so what is said of a map comes
// out the same way every time.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// show renders a raw value for an error message.
func show(raw any) string {
	switch x := raw.(type) {
	case string:
		return strconv.Quote(x)
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	default:
		return fmt.Sprint(x)
	}
}

func kindName(raw any) string {
	switch raw.(type) {
	case map[string]any:
		return "mapping"
	case []any:
		return "list"
	}
	return fmt.Sprintf("%T", raw)
}

// envName is the variable that sets key: CTIBRIDGE_ then the key in
// capitals with __ between levels (pbx.secret: CTIBRIDGE_PBX__SECRET).
func envName(key string) string {
	return "CTIBRIDGE_" + strings.ToUpper(strings.ReplaceAll(key, ".", "__"))
}

// EnvVars maps every variable ctibridge reads to the key it sets. A map
// key (calls.agents) is a prefix: CTIBRIDGE_CALLS__AGENTS__101 sets
// calls.agents.101. Lists of sections (webhooks) are set in the file only.
func EnvVars() map[string]string {
	out := map[string]string{}
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("koanf")
			if tag == "" || tag == "-" {
				continue
			}
			key := tag
			if prefix != "" {
				key = prefix + "." + tag
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case ft == durationType:
				out[envName(key)] = key
			case ft.Kind() == reflect.Struct:
				walk(key, ft)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				// set in the file only
			case ft.Kind() == reflect.Map:
				out[envName(key)+"__"] = key + "."
			default:
				out[envName(key)] = key
			}
		}
	}
	walk("", reflect.TypeFor[Config]())
	return out
}

// ownVariables are CTIBRIDGE_ prefixes of the project's test and bench
// knobs: never settings, so serve ignores them rather than refusing.
var ownVariables = []string{"CTIBRIDGE_FAULTS_", "CTIBRIDGE_BENCH_", "CTIBRIDGE_TEST_"}

// envKey maps a variable to its key, or explains why it sets nothing.
func envKey(vars map[string]string, name string) (key string, ignore bool, err *Error) {
	if key, ok := vars[name]; ok {
		return key, false, nil
	}
	for v, prefix := range vars {
		if strings.HasSuffix(v, "__") && strings.HasPrefix(name, v) && len(name) > len(v) {
			return prefix + strings.ToLower(name[len(v):]), false, nil
		}
	}
	for _, p := range ownVariables {
		if strings.HasPrefix(name, p) {
			return "", true, nil
		}
	}
	reason := "unknown setting"
	if near := nearest(name, vars); near != "" {
		reason += "; did you mean " + near + "?"
	} else {
		reason += " (each key of the file is CTIBRIDGE_ then the key in capitals with __ between levels, e.g. CTIBRIDGE_PBX__SECRET)"
	}
	return "", false, &Error{Key: name, Reason: reason}
}

// nearest is the known variable closest to name, if it is close.
func nearest(name string, vars map[string]string) string {
	best, bestD := "", 1<<30
	for v := range vars {
		d := distance(name, strings.TrimSuffix(v, "__"))
		if d < bestD || d == bestD && v < best {
			best, bestD = v, d
		}
	}
	if bestD > 3+len(name)/8 {
		return ""
	}
	if strings.HasSuffix(best, "__") {
		return best + "<KEY>" // a map: one variable per entry
	}
	return best
}

// distance is the Levenshtein distance.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// resolvePath makes a relative path from the file relative to the file's
// directory, so a command run from elsewhere finds the same database.
func resolvePath(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}
