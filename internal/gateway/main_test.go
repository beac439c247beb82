package gateway_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/internal/acmecert/acmetest"
	"github.com/wsgate/wsgate/internal/servicetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	servicetest.StopShared()
	if code == 0 {
		if err := goleak.Find(acmetest.IgnoreGoroutines...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
