package config

import (
	"errors"
	"os"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzParse checks that Parse never panics, that every problem it reports is
// an *Error naming the file, and that a configuration it accepts validates.
//
// The seeds are kept small: the embedded default and each top-level section
// (each route, for routes) of example.yaml, without comments and in flow
// style. Those files themselves are 13 KB and 6 KB, mostly comments, and the
// fuzzing engine minimizes every input that finds new coverage, for up to a
// minute, by parsing it again for each byte and each span it tries to
// remove: with the whole files as seeds the workers spent their time
// minimizing and ran a few inputs a second. For the same reason inputs over
// maxFuzzInput are skipped; the parser's own limits (merge keys, aliases) are
// reached by far smaller ones.
func FuzzParse(f *testing.F) {
	for _, seed := range sectionSeeds(f, DefaultYAML) {
		f.Add(seed)
	}
	example, err := os.ReadFile("example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range sectionSeeds(f, example) {
		f.Add(seed)
	}
	for _, seed := range []string{
		"",
		"listen: \":8080\"\n---\nstage: x\n",
		"limits:\n  listn: 1\n  idle_timeout: abc\n",
		"routes:\n  $x: {integration: {type: http, url: 'ftp://x', headers: {'a b': \"\\n\"}}}\n",
		"limits: &l\n  <<: *l\n",
		"routes:\n  a: &r {integration: {type: mock}}\n  b: {<<: [*r, *r]}\n",
		"? [a]\n: 1\n",
		"management: {listen: '', enabled: maybe, auth: {bearer_tokens_env: '1x'}}\n",
		"\"\": ~\n",
		"- 1\n",
		"a: [\n",
		"# comment\nlisten: \":8080\" # comment\n\nlimits: # comment\n  idle_timeout: 1m\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzInput {
			t.Skip()
		}
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned a config with error %v", err)
			}
			joined, ok := err.(interface{ Unwrap() []error })
			if !ok {
				t.Fatalf("Parse error %T is not joined", err)
			}
			for _, e := range joined.Unwrap() {
				var ce *Error
				if !errors.As(e, &ce) || ce.File != "fuzz.yaml" {
					t.Fatalf("problem %q is not an *Error naming the file", e)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
		}
		if c.Listen == "" || c.Management.Enabled == nil || len(c.Routes) == 0 {
			t.Fatalf("Parse returned a config without defaults: %+v", c)
		}
	})
}

// maxFuzzInput is the largest input FuzzParse runs.
const maxFuzzInput = 1024

// sectionSeeds returns the YAML document data without comments and in flow
// style, when that fits in maxFuzzInput, and one such document per top-level
// key of data, and per route under routes.
func sectionSeeds(tb testing.TB, data []byte) [][]byte {
	tb.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		tb.Fatal(err)
	}
	compact(&doc)
	root := doc.Content[0]
	var seeds [][]byte
	if whole, err := yaml.Marshal(root); err == nil && len(whole) <= maxFuzzInput {
		seeds = append(seeds, whole)
	}
	add := func(pair ...*yaml.Node) {
		out, err := yaml.Marshal(&yaml.Node{Kind: yaml.MappingNode, Content: pair})
		if err != nil {
			tb.Fatal(err)
		}
		if len(out) > maxFuzzInput {
			tb.Fatalf("seed of %d bytes is over maxFuzzInput: %s", len(out), out)
		}
		seeds = append(seeds, out)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		if key.Value != "routes" {
			add(key, val)
			continue
		}
		for j := 0; j+1 < len(val.Content); j += 2 {
			add(key, &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle, Content: val.Content[j : j+2]})
		}
	}
	return seeds
}

// compact removes the comments of n and its children and puts them in flow
// style.
func compact(n *yaml.Node) {
	n.HeadComment, n.LineComment, n.FootComment = "", "", ""
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		n.Style = yaml.FlowStyle
	}
	for _, c := range n.Content {
		compact(c)
	}
}
