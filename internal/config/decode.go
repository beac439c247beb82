package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/suggest"
	"gopkg.in/yaml.v3"
)

// Error is one problem in a configuration. Load, Parse and Validate return
// every problem as an *Error joined with errors.Join; errors.As finds the
// first.
type Error struct {
	// File is the file name given to Load or Parse, or "" for a Config
	// built by hand.
	File string
	// Line is the 1-based line of the key the problem is about, or 0 when
	// the file does not set that key or any key above it.
	Line int
	// Path is the dotted key path, such as "limits.idle_timeout", or "" when
	// the problem is not about one key (a syntax error, an unknown key).
	Path string
	// Msg says what is wrong and, where it helps, what to write instead.
	Msg string
	// Err is the cause, for errors.Is and IsMissing, when the problem has one
	// that callers tell apart, such as ErrMissing or fs.ErrNotExist; often
	// nil. It is not part of the message.
	Err error
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// Error formats e as "FILE:LINE: PATH: MSG", leaving out the parts that are
// empty.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// source is where a Config came from: the file name and the line of each
// key, by dotted path.
type source struct {
	file  string
	lines map[string]int
}

// line returns the line of path or, when the file does not set path, of its
// nearest ancestor that it does set; 0 when there is none.
func (s source) line(path string) int {
	for path != "" {
		if n, ok := s.lines[path]; ok {
			return n
		}
		i := strings.LastIndexByte(path, '.')
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// has reports whether the file sets the key at path.
func (s source) has(path string) bool {
	_, ok := s.lines[path]
	return ok
}

// Position returns the file name c was parsed from and the line of the key at
// the dotted path, such as "route_selection_expression" or
// "routes.$default.integration.url". The line is 0 when the file does not set
// that key, and the file is "" for a Config built by hand.
func (c *Config) Position(path string) (file string, line int) {
	return c.src.file, c.src.lines[path]
}

// Errorf returns an *Error about the key at the dotted path, located at that
// key's line or, when the file does not set it, at the line of its nearest
// ancestor. Packages that check parts of the configuration themselves use it
// to report problems in the same form as Validate. The message is formatted
// as by fmt.Errorf, and the error a %w verb formats becomes the Err.
func (c *Config) Errorf(path, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return c.Locate(&Error{Path: path, Msg: err.Error(), Err: errors.Unwrap(err)})
}

// Locate returns a copy of e in the file c was parsed from, at the line of the
// key e.Path names or, when the file does not set it, of its nearest
// ancestor. Packages that report problems as *Error values without a file,
// such as the authorizers, are located with it.
func (c *Config) Locate(e *Error) *Error {
	located := *e
	located.File, located.Line = c.src.file, c.src.line(e.Path)
	return &located
}

// Load reads the configuration file at path and returns it as Parse does,
// except that a file holding no configuration — empty, or only whitespace,
// comments, document markers or a null — is an error naming the file: such a
// file is more likely a mistake (a truncated write, an empty mount) than a
// request for the defaults, which wsgate runs on when it is given no file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return parse(path, data, true)
}

// Parse decodes data as a YAML configuration, fills its defaults and
// validates it. name is the file name used in error messages.
//
// Decoding is strict: an unknown key, a duplicate key, a value of the wrong
// type or more than one YAML document is an error. Data that is empty or
// holds only whitespace or comments gives the default configuration. On
// failure Parse returns a nil Config and every problem found, decoding and
// validation alike, ordered by line.
func Parse(name string, data []byte) (*Config, error) {
	return parse(name, data, false)
}

// parse is Parse; with needKeys, data without a configuration is an error.
func parse(name string, data []byte, needKeys bool) (*Config, error) {
	c := &Config{src: source{file: name, lines: map[string]int{}}}
	root, errs := parseDocument(name, data)
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	if root == nil && needKeys {
		return nil, joinErrors([]*Error{{File: name,
			Msg: "the file holds no configuration (no key, only whitespace or comments); set at least one key, or give no config file to run on the defaults"}})
	}
	var failed []string
	if root != nil {
		d := &decoder{file: name, lines: c.src.lines, active: map[*yaml.Node]bool{}}
		if root.Kind != yaml.MappingNode {
			d.errorf(root.Line, "", "the configuration must be a mapping of keys, got %s", describe(root))
		} else {
			d.decode(root, reflect.ValueOf(c).Elem(), "")
		}
		errs, failed = d.errs, d.failed
	}
	if c.src.has("management.listen") && c.Management.Listen == "" {
		errs = append(errs, &Error{File: name, Line: c.src.lines["management.listen"], Path: "management.listen",
			Msg: "empty address; to turn the management API off, set management.enabled: false"})
	}
	c.FillDefaults()
	for _, p := range c.problems() {
		if !undecoded(failed, p.Path) {
			errs = append(errs, p)
		}
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return c, nil
}

// undecoded reports whether path or a key above it is among the failed
// paths, whose values could not be decoded. Validation problems there follow
// from the missing value and would only repeat the decoding error.
func undecoded(failed []string, path string) bool {
	for _, f := range failed {
		if path == f || strings.HasPrefix(path, f+".") {
			return true
		}
	}
	return false
}

// joinErrors orders errs by line (problems without a line last), drops
// repeats and joins them, or returns nil when there are none.
func joinErrors(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	slices.SortStableFunc(errs, func(a, b *Error) int {
		return cmp.Compare(sortLine(a.Line), sortLine(b.Line))
	})
	list := make([]error, 0, len(errs))
	seen := make(map[string]bool, len(errs))
	for _, e := range errs {
		if msg := e.Error(); !seen[msg] {
			seen[msg] = true
			list = append(list, e)
		}
	}
	return errors.Join(list...)
}

func sortLine(n int) int {
	if n == 0 {
		return int(^uint(0) >> 1)
	}
	return n
}

// parseDocument parses data into a YAML node tree and returns the root of its
// only document, or nil when data holds no document or an empty one.
func parseDocument(name string, data []byte) (*yaml.Node, []*Error) {
	if len(bytes.TrimSpace(data)) == 0 {
		// The YAML parser rejects a line holding only a tab.
		return nil, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, []*Error{syntaxError(name, err)}
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, []*Error{syntaxError(name, err)}
	default:
		return nil, []*Error{{File: name, Line: next.Line,
			Msg: "a second YAML document starts here; the configuration must be a single document"}}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := resolve(doc.Content[0])
	if root == nil || isNull(root) {
		return nil, nil
	}
	return root, nil
}

var yamlLineError = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns an error of the YAML parser into an *Error that names the
// file.
func syntaxError(name string, err error) *Error {
	msg := err.Error()
	if m := yamlLineError.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: name, Line: line, Msg: m[2]}
	}
	return &Error{File: name, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

// maxMergedEntries bounds the keys that merge keys ("<<") may bring in, so
// that nested aliases cannot make decoding take exponential time.
const maxMergedEntries = 10000

// decoder fills a Go value from a YAML node tree, following the yaml tags of
// struct fields. Unlike yaml.Node.Decode it rejects unknown keys, and it
// records the line of every key and reports every problem with its path.
type decoder struct {
	file  string
	lines map[string]int
	errs  []*Error
	// active holds the mappings whose entries are being expanded through a
	// merge key, to stop a mapping that merges itself.
	active map[*yaml.Node]bool
	merged int
	// failed holds the paths of the values that could not be decoded.
	failed []string
}

// typeError reports that the value at path, on line, is not of the kind
// wanted.
func (d *decoder) typeError(line int, path, format string, args ...any) {
	d.failed = append(d.failed, path)
	d.errorf(line, path, format, args...)
}

func (d *decoder) errorf(line int, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

var durationType = reflect.TypeFor[time.Duration]()

// decode stores the value of n in v. A null leaves v unchanged.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n = resolve(n)
	if n == nil || isNull(n) {
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	default:
		d.decodeScalar(n, v, path)
	}
}

var oneOrMoreType = reflect.TypeFor[OneOrMore]()

// decodeSlice stores a sequence in v. A OneOrMore also takes a single
// scalar as a list of one.
func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode && v.Type() == oneOrMoreType {
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decodeScalar(n, elem, path)
		v.Set(reflect.Append(reflect.MakeSlice(v.Type(), 0, 1), elem))
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.typeError(n.Line, path, "want a list, got %s", describe(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, item := range n.Content {
		elem := reflect.New(v.Type().Elem()).Elem()
		p := fmt.Sprintf("%s[%d]", path, i)
		d.lines[p] = item.Line
		d.decode(item, elem, p)
		out = reflect.Append(out, elem)
	}
	v.Set(out)
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.typeError(n.Line, path, "want a mapping of keys, got %s", describe(n))
		return
	}
	fields := yamlFields(v.Type())
	for _, e := range d.entries(n, path) {
		i, ok := fields[e.key.Value]
		if !ok {
			d.unknownKey(e.key, path, fields)
			continue
		}
		p := joinPath(path, e.key.Value)
		d.lines[p] = e.key.Line
		d.decode(e.val, v.Field(i), p)
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.typeError(n.Line, path, "want a mapping, got %s", describe(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for _, e := range d.entries(n, path) {
		p := joinPath(path, e.key.Value)
		d.lines[p] = e.key.Line
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(e.val, elem, p)
		v.SetMapIndex(reflect.ValueOf(e.key.Value).Convert(v.Type().Key()), elem)
	}
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	ok := n.Kind == yaml.ScalarNode
	if ok && t != durationType && isInt(t.Kind()) {
		// yaml.v3 would truncate 1.5 to 1; only integers are accepted.
		ok = n.ShortTag() == "!!int"
	}
	if ok {
		ok = n.Decode(v.Addr().Interface()) == nil
	}
	if !ok {
		d.typeError(n.Line, path, "%s, got %s", want(t), describe(n))
	}
}

// entry is one key and value of a mapping.
type entry struct{ key, val *yaml.Node }

// entries returns the keys and values of the mapping n, with the entries
// brought in by merge keys ("<<") after its own and never overriding them.
// Keys that are not scalars and duplicate keys are reported and left out.
func (d *decoder) entries(n *yaml.Node, path string) []entry {
	var out []entry
	var merges []entry
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		if k == nil || k.Kind != yaml.ScalarNode {
			d.errorf(n.Content[i].Line, path, "a key must be a string, got %s", describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			merges = append(merges, entry{k, n.Content[i+1]})
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k.Line, path, "duplicate key %q (first set at line %d)", k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, entry{k, n.Content[i+1]})
	}
	for _, m := range merges {
		for _, e := range d.mergeEntries(m.key.Line, m.val, path) {
			if _, dup := seen[e.key.Value]; !dup {
				seen[e.key.Value] = e.key
				out = append(out, e)
			}
		}
	}
	return out
}

// mergeEntries returns the entries that m, the value of a merge key at line
// keyLine, brings in: a mapping, or a list of mappings of which the earlier
// win.
func (d *decoder) mergeEntries(keyLine int, m *yaml.Node, path string) []entry {
	m = resolve(m)
	if m == nil {
		return nil
	}
	switch m.Kind {
	case yaml.MappingNode:
		if d.active[m] {
			d.errorf(keyLine, path, "merge key (<<) brings in a mapping that contains itself")
			return nil
		}
		if d.merged += len(m.Content) / 2; d.merged > maxMergedEntries {
			d.errorf(keyLine, path, "merge keys (<<) bring in more than %d keys", maxMergedEntries)
			return nil
		}
		d.active[m] = true
		defer delete(d.active, m)
		return d.entries(m, path)
	case yaml.SequenceNode:
		var out []entry
		for _, item := range m.Content {
			if r := resolve(item); r == nil || r.Kind != yaml.MappingNode {
				d.errorf(item.Line, path, "the value of a merge key (<<) must be a mapping or a list of mappings, got a list holding %s", describe(r))
				continue
			}
			out = append(out, d.mergeEntries(item.Line, item, path)...)
		}
		return out
	}
	d.errorf(keyLine, path, "the value of a merge key (<<) must be a mapping or a list of mappings, got %s", describe(m))
	return nil
}

func (d *decoder) unknownKey(key *yaml.Node, path string, fields map[string]int) {
	msg := fmt.Sprintf("unknown key %q", key.Value)
	if path != "" {
		msg += " in " + path
	}
	if s := nearestKey(key.Value, fields); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: key.Line, Msg: msg})
}

// Leaves returns the errors joined in err (errors.Join), at any depth, in
// order; nil for nil.
func Leaves(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		if err == nil {
			return nil
		}
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, Leaves(e)...)
	}
	return out
}

// nearestKey returns the known key closest to key when it is close enough to be
// a likely typo, or "".
func nearestKey(key string, fields map[string]int) string {
	best := suggest.Nearest(key, slices.Sorted(maps.Keys(fields)), 3)
	if best == "" || suggest.Distance(key, best) > len(key)/2 {
		return ""
	}
	return best
}

// yamlFields maps the yaml key of each tagged field of struct type t to its
// index.
func yamlFields(t reflect.Type) map[string]int {
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.IsExported() && name != "" && name != "-" {
			fields[name] = i
		}
	}
	return fields
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i == 100 {
			return nil
		}
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func isInt(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// want describes the values a scalar of type t accepts.
func want(t reflect.Type) string {
	switch {
	case t == durationType:
		return `want a duration such as "10s" or "2m30s"`
	case t.Kind() == reflect.Bool:
		return "want true or false"
	case isInt(t.Kind()):
		return "want a whole number"
	case t.Kind() == reflect.String:
		return "want a string"
	}
	return "want a " + t.String()
}

// describe names what the node n holds, for error messages.
func describe(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		if n.ShortTag() == "!!str" {
			return strconv.Quote(v)
		}
		return v
	}
	return "a document"
}

// IsSet reports whether the file c was parsed from sets the key at the
// dotted path, such as "routes" or "authorizer.type". It is false for every
// key of a Config built by hand. Callers that combine c with configuration
// from elsewhere use it to refuse a key set in both places.
func (c *Config) IsSet(path string) bool {
	return c.src.has(path)
}
