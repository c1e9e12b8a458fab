package state

import (
	"testing"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/state/statetest"
)

// TestConformance runs the State conformance suite against the Redis store:
// the real redis-server at REDIS_URL in `make test`, else miniredis; both
// the chunked scripts (standalone, Sentinel) and the per-row scripts (the
// Cluster path, forced on one server).
func TestConformance(t *testing.T) {
	for _, mode := range []struct {
		name   string
		perRow bool
	}{{"chunked", false}, {"per-row", true}} {
		t.Run(mode.name, func(t *testing.T) {
			statetest.Run(t, func(t *testing.T) processor.State {
				s, _ := newTestStore(t, Options{SingleRowScripts: mode.perRow})
				return s
			})
		})
	}
}
