package integration

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/internal/servicetest"
)

var testTempDirs []string

func tempDirForBuild() (string, error) {
	dir, err := os.MkdirTemp("", "wsgate-lambda-")
	if err == nil {
		testTempDirs = append(testTempDirs, dir)
	}
	return dir, err
}

func TestMain(m *testing.M) {
	code := m.Run()
	servicetest.StopShared()
	for _, d := range testTempDirs {
		_ = os.RemoveAll(d)
	}
	if code == 0 {
		// Local runtimes and broker connections start goroutines; every
		// one must be gone once its owner is closed.
		// fasthttp's connection cleaner goroutines end by themselves within
		// IdleConnTimeout once their connections are closed.
		if err := goleak.Find(goleak.IgnoreAnyFunction(PoolCleaner), goleak.IgnoreAnyFunction(DateClock)); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
