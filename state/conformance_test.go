package state

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/state/statetest"
)

// TestConformance runs the State conformance suite against the Redis store:
// the real redis-server at REDIS_URL in `make test`, else miniredis; both
// the chunked scripts (standalone, Sentinel) and the per-row scripts (the
// Cluster path, forced on one server), and the chunked scripts with small
// batches coalesced through the autopipeliner (Options.Coalesce; on a
// Cluster client, which does not coalesce, the chunked run again); and both
// script paths with the trims of committed rows deferred (Options.TrimDelay
// longer than any test), which must not change any outcome: a row's next
// apply trims first.
func TestConformance(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts Options
	}{
		{"chunked", Options{}},
		{"per-row", Options{SingleRowScripts: true}},
		{"coalesced", Options{Coalesce: true}},
		{"deferred-trims", Options{TrimDelay: time.Hour}},
		{"deferred-trims-per-row", Options{TrimDelay: time.Hour, SingleRowScripts: true}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			statetest.Run(t, func(t *testing.T) processor.State {
				s, _ := newTestStore(t, mode.opts)
				if _, standalone := s.c.(*redis.Client); mode.opts.Coalesce && standalone && s.ap == nil {
					t.Fatal("Coalesce set on a standalone client, no autopipeliner")
				}
				return s
			})
		})
	}
}
