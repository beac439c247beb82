package registry_test

import (
	"testing"

	"github.com/wsgate/wsgate/internal/registry"
	"github.com/wsgate/wsgate/internal/registry/registrytest"
)

func TestMemoryContract(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) registry.Registry { return registry.NewMemory() })
}
