package cli_test

import (
	"fmt"
	"testing"

	"github.com/wsgate/wsgate/internal/servicetest"
)

// TestValidateWarnsNATSServerTooOld: validate accepts a configuration whose
// NATS server is older than 2.11 (the configuration itself is right; the
// server may be upgraded before serving) but warns, at the url's line,
// that the server is too old, naming its version.
func TestValidateWarnsNATSServerTooOld(t *testing.T) {
	url, version := servicetest.OldNATS(t)
	path := writeFile(t, "nats.yaml", fmt.Sprintf(`registry:
  type: nats
  nats:
    url: %q
`, url))
	r := run(t, nil, "validate", "-c", path)
	want := fmt.Sprintf("%s:4: registry.nats.url: warning: NATS server %s too old (needs ≥ 2.11)\n%s: ok\n", path, version, path)
	if r.code != 0 || r.stdout != want {
		t.Fatalf("got %v, want exit 0 and stdout %q", r, want)
	}
}
