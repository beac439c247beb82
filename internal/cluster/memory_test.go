package cluster_test

import (
	"testing"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/cluster/clustertest"
	"github.com/wsgate/wsgate/internal/registry"
	"github.com/wsgate/wsgate/internal/registry/registrytest"
)

func TestMemoryEngineContract(t *testing.T) {
	clustertest.Run(t, func(t *testing.T) (a, b cluster.Engine) {
		n := cluster.NewMemoryNetwork()
		return n.Engine(), n.Engine()
	})
}

func TestMemoryEngineRegistryContract(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) registry.Registry { return cluster.NewMemory() })
}
