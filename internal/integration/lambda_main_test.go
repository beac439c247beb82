package integration

import (
	"os"
	"testing"
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
	for _, d := range testTempDirs {
		_ = os.RemoveAll(d)
	}
	os.Exit(code)
}
