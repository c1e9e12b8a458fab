// Package pipeline builds portalmail's two stages from their parts: the same
// constructors serve `portalmail process` / `send`, the embedded demo and the
// integration tests, so what the tests run is what production runs.
package pipeline

import (
	"context"
	"log/slog"
	"time"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/processor/send"
	"github.com/portalmail/portalmail/processor/stream"
	"github.com/portalmail/portalmail/schemas"
	"github.com/portalmail/portalmail/schemas/cdc"
	"github.com/portalmail/portalmail/state"
	"github.com/portalmail/portalmail/templates"
)

// ProcessDeps is what the process stage is built from.
type ProcessDeps struct {
	Engine processor.Config
	// Store is the engine's state (a *state.Store but in tests).
	Store   processor.State
	Serde   *schemas.Serde
	Schemas cdc.SchemaSource
	// Prefixes of the CDC topics ("portal", "service" by default).
	PortalPrefix, ServicePrefix string
	// Stream is the stage's Kafka configuration; Topics is filled in with
	// every topic of the source contract.
	Stream stream.ProcessConfig
	Log    *slog.Logger
}

// NewProcess builds the process stage: templates, engine, decoder, and the
// transactional consumer group over every CDC topic of the contract.
func NewProcess(d ProcessDeps) (*stream.Process, *processor.Engine, error) {
	tmpl, err := templates.Parse()
	if err != nil {
		return nil, nil, err
	}
	eng, err := processor.New(catalog.Default(), d.Store, tmpl, d.Engine)
	if err != nil {
		return nil, nil, err
	}
	dec := cdc.NewDecoder(cdc.DecoderConfig{PortalPrefix: d.PortalPrefix, ServicePrefix: d.ServicePrefix, Schemas: d.Schemas, Images: true})
	cfg := d.Stream
	cfg.Topics = dec.Topics()
	if cfg.ReferenceTopics == nil {
		// The rows recipients and capacities are resolved through.
		for _, t := range []string{cdc.Partners, cdc.Companies, cdc.PortalUsers, cdc.InteropSubscriptions} {
			cfg.ReferenceTopics = append(cfg.ReferenceTopics, dec.Topic(t))
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = d.Log
	}
	p, err := stream.NewProcess(cfg, eng, dec, d.Serde)
	return p, eng, err
}

// SendDeps is what the send stage is built from.
type SendDeps struct {
	Mailer send.Mailer
	// RatePerSecond caps Mailgun calls (0: unlimited).
	RatePerSecond float64
	Store         *state.Store
	Serde         *schemas.Serde
	Stream        stream.SendConfig
}

// NewSend builds the send stage. With d.Stream.Metrics set, every Mailer call
// is timed and every rate-limit wait measured.
func NewSend(d SendDeps) (*stream.Send, error) {
	m, obs := d.Mailer, d.Stream.Metrics
	if obs != nil {
		inner := m
		m = send.MailerFunc(func(ctx context.Context, j schemas.EmailJob) (string, error) {
			start := time.Now()
			id, err := inner.Send(ctx, j)
			obs.MailgunRequest(time.Since(start), err)
			return id, err
		})
	}
	if d.RatePerSecond > 0 {
		l := send.NewLimiter(d.RatePerSecond, max(1, int(d.RatePerSecond)))
		if obs == nil {
			m = send.RateLimited(m, l)
		} else {
			inner := m
			m = send.MailerFunc(func(ctx context.Context, j schemas.EmailJob) (string, error) {
				start := time.Now()
				err := l.Wait(ctx)
				obs.RateLimitWaited(time.Since(start))
				if err != nil {
					return "", err
				}
				return inner.Send(ctx, j)
			})
		}
	}
	cfg := d.Stream
	if cfg.Render == nil {
		tmpl, err := templates.Parse()
		if err != nil {
			return nil, err
		}
		cfg.Render = tmpl.RenderJobData
	}
	return stream.NewSend(cfg, m, d.Store, d.Serde)
}
