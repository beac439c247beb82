package config

import (
	"errors"
	"os"
	"testing"
)

// FuzzParse checks that Parse never panics, that every problem it reports is
// an *Error naming the file, and that a configuration it accepts validates.
func FuzzParse(f *testing.F) {
	f.Add(DefaultYAML)
	if example, err := os.ReadFile("example.yaml"); err == nil {
		f.Add(example)
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
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
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
