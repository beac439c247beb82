package config

import "testing"

// A topic name may hold the ASCII space (README: "every character
// printable (letters, marks, numbers, punctuation, symbols, the ASCII
// space …)"), and in a topics.allow pattern every character other than the
// wildcards matches itself: a pattern naming such a topic is valid.
func TestTopicsAllowPatternWithSpace(t *testing.T) {
	checkProblems(t, `topics: {allow: ["rooms/lobby chat", "team {principalId}/*", "a b/*"]}`)
}
