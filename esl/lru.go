package esl

// lru is a bounded map forgetting the oldest key first.
type lru[V any] struct {
	max  int
	vals map[string]V
	keys []string
	head int
}

func newLRU[V any](max int) *lru[V] { return &lru[V]{max: max, vals: make(map[string]V)} }

func (l *lru[V]) add(k string, v V) {
	if _, ok := l.vals[k]; !ok {
		if len(l.keys) < l.max {
			l.keys = append(l.keys, k)
		} else {
			delete(l.vals, l.keys[l.head])
			l.keys[l.head] = k
			l.head = (l.head + 1) % l.max
		}
	}
	l.vals[k] = v
}

func (l *lru[V]) has(k string) bool { _, ok := l.vals[k]; return ok }

func (l *lru[V]) get(k string) (V, bool) { v, ok := l.vals[k]; return v, ok }

// remove forgets k. Its slot in the ring stays until the ring comes round
// to it: a k added again meanwhile may then be forgotten early.
func (l *lru[V]) remove(k string) { delete(l.vals, k) }
