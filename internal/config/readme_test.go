package config

import (
	"bufio"
	"bytes"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestREADMEDocumentsEveryKey checks the configuration table of README.md
// against the Config struct: every key is documented there, and every key
// the table names exists.
//
// A key path such as limits.idle_timeout is documented by a row whose first
// cell names it, or names a section above it (`authorizer.jwt.*` or
// `management.auth.sigv4`) in a row that mentions the rest of the path in
// backticks (`issuer`, `access_key_id`). A first cell may name several keys
// separated by " / ": a name with a dot is a full path, one without is a
// sibling of the first (`registry.redis.url` / `password_env`). Map keys are
// written KEY (routes.KEY.route_response).
func TestREADMEDocumentsEveryKey(t *testing.T) {
	rows := configTable(t)
	documented := func(path string) bool {
		for _, r := range rows {
			for _, name := range r.keys {
				switch {
				case name == path:
					return true
				case strings.HasPrefix(path, name+"."):
					if strings.Contains(r.text, "`"+strings.TrimPrefix(path, name+".")+"`") {
						return true
					}
				}
			}
		}
		return false
	}
	leaves := leafPaths()
	for _, p := range leaves {
		if !documented(p) {
			t.Errorf("README.md's configuration table does not document %s", p)
		}
	}
	for _, r := range rows {
		for _, name := range r.keys {
			if !slices.ContainsFunc(leaves, func(p string) bool { return p == name || strings.HasPrefix(p, name+".") }) {
				t.Errorf("README.md's configuration table names %s, which is not a configuration key", name)
			}
		}
	}
}

// readmeRow is one row of the README's configuration table: the key paths
// of its first cell (a trailing ".*" removed) and the whole row.
type readmeRow struct {
	keys []string
	text string
}

// configTable returns the rows of the table under "## Configuration" in
// README.md.
func configTable(t *testing.T) []readmeRow {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows []readmeRow
	section, inTable := false, false
	name := regexp.MustCompile("`([^`]+)`")
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			section = line == "## Configuration"
			continue
		}
		if !section {
			continue
		}
		if line == "| key | default | meaning |" {
			inTable = true
			continue
		}
		if !inTable || strings.HasPrefix(line, "|---") {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			break
		}
		first := strings.Split(line, "|")[1]
		var keys []string
		for i, part := range strings.Split(first, " / ") {
			m := name.FindStringSubmatch(part)
			if m == nil {
				t.Fatalf("README.md configuration row without a `key`: %s", line)
			}
			key := strings.TrimSuffix(m[1], ".*")
			if i > 0 && !strings.Contains(key, ".") && strings.Contains(keys[0], ".") {
				key = keys[0][:strings.LastIndexByte(keys[0], '.')+1] + key
			}
			keys = append(keys, key)
		}
		rows = append(rows, readmeRow{keys: keys, text: line})
	}
	if len(rows) == 0 {
		t.Fatal("README.md has no configuration table (| key | default | meaning |) under ## Configuration")
	}
	return rows
}

// leafPaths returns the path of every key of Config that holds a value
// rather than a section of keys, with KEY for the keys of a map of sections.
func leafPaths() []string {
	all := schemaPaths(reflect.TypeFor[Config](), "")
	var leaves []string
	for _, p := range all {
		if slices.ContainsFunc(all, func(q string) bool { return strings.HasPrefix(q, p+".") }) {
			continue
		}
		p = strings.TrimSuffix(p, ".*")
		leaves = append(leaves, strings.ReplaceAll(p, ".*.", ".KEY."))
	}
	return leaves
}
