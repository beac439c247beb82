package gateway_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/internal/acmecert/acmetest"
	"github.com/wsgate/wsgate/internal/integration"
	"github.com/wsgate/wsgate/internal/servicetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	servicetest.StopShared()
	if code == 0 {
		// fasthttp's connection cleaners (FastClient) end by themselves
		// within integration.IdleConnTimeout once their connections are
		// closed.
		if err := goleak.Find(append(acmetest.IgnoreGoroutines,
			goleak.IgnoreAnyFunction(integration.PoolCleaner),
			goleak.IgnoreAnyFunction(integration.DateClock))...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
