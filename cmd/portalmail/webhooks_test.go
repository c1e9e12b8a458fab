package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/portalmail/portalmail/processor/pipeline"
	"github.com/portalmail/portalmail/processor/webhooks"
	"github.com/portalmail/portalmail/schemas"
)

// TestDeliveryProducerClassifiesFailures: an update too large for the topic
// is webhooks.ErrNotRecordable (the webhook answers 406 and keeps the token
// spent); an unreachable broker is retryable (503, token released).
func TestDeliveryProducerClassifiesFailures(t *testing.T) {
	ctx := context.Background()
	env, err := pipeline.StartEmbedded(ctx, pipeline.EmbeddedOptions{Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	p := deliveryProducer{cl, env.Serde, pipeline.DeliveriesTopic}
	d := schemas.EmailDelivery{Key: "k", Type: "order.new", Outcome: schemas.OutcomeSent, Event: "delivered"}
	if err := p.Record(ctx, d); err != nil {
		t.Fatalf("small update: %v", err)
	}
	d.LastError = strings.Repeat("x", 2<<20)
	if err := p.Record(ctx, d); !errors.Is(err, webhooks.ErrNotRecordable) {
		t.Fatalf("2 MiB update: %v, want ErrNotRecordable", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	d.LastError = ""
	if err := p.Record(cctx, d); err == nil || errors.Is(err, webhooks.ErrNotRecordable) {
		t.Fatalf("cancelled produce: %v, want a retryable error", err)
	}
}
