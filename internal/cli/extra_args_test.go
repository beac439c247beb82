package cli_test

import "testing"

// TestCommandsWithoutArgumentsRefuseThem: version, default-config and help
// take no arguments or flags; given some, they are usage errors (exit 2
// with a message), as for every other command.
func TestCommandsWithoutArgumentsRefuseThem(t *testing.T) {
	for _, args := range [][]string{
		{"version", "extra"},
		{"version", "-nosuchflag"},
		{"default-config", "extra"},
		{"default-config", "-c", "wsgate.yaml"},
		{"help", "extra"},
	} {
		r := run(t, nil, args...)
		if r.code != 2 || r.stderr == "" || r.stdout != "" {
			t.Errorf("%q: want a usage error (exit 2, a message on stderr, nothing on stdout), got %v", args, r)
		}
	}
}
