package route

// The predefined route keys.
const (
	Connect    = "$connect"
	Disconnect = "$disconnect"
	Default    = "$default"
)

// Table maps route keys to routes of type T. The zero value is an empty
// table. A Table is not modified after it is built and is safe for
// concurrent reads.
type Table[T any] struct {
	routes map[string]T
}

// NewTable returns a table holding routes, keyed by route key.
func NewTable[T any](routes map[string]T) *Table[T] {
	t := &Table[T]{routes: make(map[string]T, len(routes))}
	for k, v := range routes {
		t.routes[k] = v
	}
	return t
}

// Get returns the route with exactly this key.
func (t *Table[T]) Get(key string) (T, bool) {
	r, ok := t.routes[key]
	return r, ok
}

// Select returns the route for a message whose selection expression
// evaluated to key, as AWS selects it: the route with that exact key, else
// $default, else none (ok false). $connect and $disconnect are never
// selected by a message.
func (t *Table[T]) Select(key string) (name string, r T, ok bool) {
	if key != Connect && key != Disconnect && key != Default {
		if r, ok = t.routes[key]; ok {
			return key, r, true
		}
	}
	if r, ok = t.routes[Default]; ok {
		return Default, r, true
	}
	return "", r, false
}

// Keys returns the table's route keys, in no particular order.
func (t *Table[T]) Keys() []string {
	keys := make([]string, 0, len(t.routes))
	for k := range t.routes {
		keys = append(keys, k)
	}
	return keys
}
