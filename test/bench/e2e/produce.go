package e2e

import (
	"context"
	"fmt"
	"time"

	"github.com/portalmail/portalmail/schemas/cdc"
	"github.com/portalmail/portalmail/test/bench/workload"
)

// ProduceConfig configures ProduceFile.
type ProduceConfig struct {
	Brokers []string
	// Input is a workload file (pmbench gen); Phase "snapshot", "changes"
	// or "" (both).
	Input, Phase string
	// PortalPrefix and ServicePrefix are the Debezium topic prefixes to
	// produce under (default portal and service).
	PortalPrefix, ServicePrefix string
	// Partitions, when positive, creates every CDC topic of the contract
	// with that many partitions first.
	Partitions int
	// Rate paces the records (per second); 0 is as fast as possible.
	Rate int
}

// ProduceFile produces a workload file to its Debezium topics, keyed by
// row id (a row's changes stay in one partition), in batches, and returns
// how many records it produced and how long that took.
func ProduceFile(ctx context.Context, c ProduceConfig) (int, time.Duration, error) {
	meta, err := workload.ReadMeta(c.Input)
	if err != nil {
		return 0, 0, err
	}
	file, err := workload.ReadJSONL(c.Input)
	if err != nil {
		return 0, 0, err
	}
	from, to := 0, len(file)
	switch c.Phase {
	case "snapshot":
		to = meta.Snapshot
	case "changes":
		from = meta.Snapshot
	case "":
	default:
		return 0, 0, fmt.Errorf("produce: phase %q: want snapshot, changes or nothing", c.Phase)
	}
	n := names{portal: c.PortalPrefix, service: c.ServicePrefix}
	if n.portal == "" {
		n.portal = "portal"
	}
	if n.service == "" {
		n.service = "service"
	}
	b, err := newBroker(c.Brokers)
	if err != nil {
		return 0, 0, err
	}
	defer b.close()
	if c.Partitions > 0 {
		topics := cdc.NewDecoder(cdc.DecoderConfig{PortalPrefix: n.portal, ServicePrefix: n.service}).Topics()
		if err := b.createTopics(ctx, int32(c.Partitions), topics...); err != nil {
			return 0, 0, err
		}
	}
	d := &driver{file: file}
	p, err := b.produce(ctx, d.records(n, from, to), c.Rate, false)
	return p.Records, p.Took, err
}
