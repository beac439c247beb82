// Package topic holds the rules for topic names, shared by the built-in
// subscribe route, the management API and the topics.allow patterns, so
// that a name one of them accepts is one the others accept too.
package topic

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxBytes is the length of the longest topic name, in bytes.
const MaxBytes = 256

// Check returns nil when name is a valid topic name, and otherwise an error
// that says what is wrong without repeating the name. A valid name is 1 to
// MaxBytes bytes of UTF-8 whose characters are all printable (letters,
// marks, numbers, punctuation, symbols and the ASCII space; no control,
// format or separator characters other than the space), split by "/" into
// segments none of which is empty, "." or "..". The segment rule keeps every
// name a canonical URL path below /@topics/, so it can be named in a
// management call exactly as a client names it.
func Check(name string) error {
	switch {
	case name == "":
		return errors.New("topic is empty")
	case len(name) > MaxBytes:
		return fmt.Errorf("topic is %d bytes; at most %d are allowed", len(name), MaxBytes)
	case !utf8.ValidString(name):
		return errors.New("topic is not valid UTF-8")
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("topic holds the unprintable character %U", r)
		}
	}
	for seg := range strings.SplitSeq(name, "/") {
		switch seg {
		case "":
			return errors.New("topic has an empty segment: it starts or ends with / or holds //")
		case ".", "..":
			return fmt.Errorf("topic has a %q segment", seg)
		}
	}
	return nil
}
