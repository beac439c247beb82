package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"unicode"
)

// Tokens reads the management API's bearer tokens from the environment
// variable and the file that a names, using getenv and readFile, and returns
// the tokens of both, without repeats, in the order found. A nil getenv or
// readFile means os.Getenv or os.ReadFile.
//
// A named environment variable that is unset or empty, a named file that
// cannot be read or holds no token, and a file line holding whitespace inside
// a token are errors. Errors name the variable or the file and line, never a
// token; each is an *Error whose Path names the key (File and Line are left
// for Config.Locate to fill), and IsMissing reports those of an unset
// variable and of a file that does not exist. When a names neither source,
// Tokens returns no tokens and no error; Management.HasAuth tells the two
// cases apart.
func (a ManagementAuth) Tokens(getenv func(string) string, readFile func(string) ([]byte, error)) ([]string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	var tokens []string
	var errs []error
	if name := a.BearerTokensEnv; name != "" {
		found := strings.FieldsFunc(getenv(name), func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
		if len(found) == 0 {
			errs = append(errs, &Error{Path: "management.auth.bearer_tokens_env", Msg: fmt.Sprintf("environment variable %s is unset or empty", name), Err: ErrMissing})
		}
		tokens = append(tokens, found...)
	}
	if path := a.BearerTokensFile; path != "" {
		found, err := tokensFromFile(path, readFile)
		if err != nil {
			errs = append(errs, &Error{Path: "management.auth.bearer_tokens_file", Msg: err.Error(), Err: err})
		}
		tokens = append(tokens, found...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return dedupe(tokens), nil
}

// tokensFromFile reads one token per line from the file at path, skipping
// blank lines and lines starting with "#".
func tokensFromFile(path string, readFile func(string) ([]byte, error)) ([]string, error) {
	data, err := readFile(path)
	if err != nil {
		// The error of os.ReadFile names the file.
		return nil, fmt.Errorf("reading tokens: %w", err)
	}
	var tokens []string
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if bytes.ContainsFunc(line, unicode.IsSpace) {
			return nil, fmt.Errorf("%s:%d: a token must not contain whitespace; put one token per line", path, i+1)
		}
		tokens = append(tokens, string(line))
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("%s holds no tokens; put one token per line", path)
	}
	return tokens, nil
}

// dedupe returns s without repeated elements, keeping the first of each.
func dedupe(s []string) []string {
	out := s[:0:0]
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
