package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/processor/address"
	"github.com/portalmail/portalmail/processor/catalog"
)

// EngineConfig is the configuration every stage that runs the engine shares.
type EngineConfig struct {
	Zone          string
	PortalPrefix  string
	ServicePrefix string
	PortalURL     string
	ServiceURL    string
	AnalyticsURL  string
	FromAddress   string
	ParkFor       time.Duration
	// MaxRecipients and MaxChangeOutput cap one email's recipients and one
	// change's output (see processor.Config).
	MaxRecipients   int
	MaxChangeOutput int
}

func (c *EngineConfig) register(f *flags) {
	f.String(&c.Zone, "zone", "UTC", "IANA time zone in which day-offset timers fall due at 09:00")
	f.String(&c.PortalPrefix, "portal-prefix", "portal", "topic prefix of the Partner Portal's CDC topics")
	f.String(&c.ServicePrefix, "service-prefix", "service", "topic prefix of the Pexip Service's CDC topics")
	f.String(&c.PortalURL, "portal-url", "https://portal.pexip.example", "base URL of Partner Portal links")
	f.String(&c.ServiceURL, "service-url", "https://service.pexip.example", "base URL of Pexip Service links")
	f.String(&c.AnalyticsURL, "analytics-url", "https://analytics.pexip.example", "base URL of Analytics links")
	f.String(&c.FromAddress, "from-address", "noreply@mail.pexip.example", "sender address (the display name is the partner's)")
	f.Duration(&c.ParkFor, "park-for", 24*time.Hour, "how long a change waits for referenced rows before it is dead-lettered")
	f.Int(&c.MaxRecipients, "max-recipients", processor.DefaultMaxRecipients, "most recipients of one email; an email with more is dead-lettered, none sent")
	f.Int(&c.MaxChangeOutput, "max-change-output", processor.DefaultMaxChangeOutput,
		"most bytes (subjects and bodies) of the jobs of one change; over it every email of the change is dead-lettered")
}

// engine turns the configuration into the engine's Config; errors list every problem.
func (c EngineConfig) engine() (processor.Config, error) {
	var errs []error
	zone, err := time.LoadLocation(c.Zone)
	if err != nil {
		errs = append(errs, fmt.Errorf("--zone %q: %v", c.Zone, err))
	}
	if c.PortalPrefix == "" || c.ServicePrefix == "" {
		errs = append(errs, errors.New("--portal-prefix and --service-prefix must not be empty"))
	}
	if c.ParkFor <= 0 {
		errs = append(errs, errors.New("--park-for must be positive"))
	}
	if c.MaxRecipients <= 0 || c.MaxChangeOutput <= 0 {
		errs = append(errs, errors.New("--max-recipients and --max-change-output must be positive"))
	}
	if why := address.Refusal(c.FromAddress); why != "" {
		errs = append(errs, fmt.Errorf("--from-address: %s", why))
	}
	cfg := processor.Config{
		Zone: zone, ParkFor: c.ParkFor, FromAddress: c.FromAddress,
		MaxRecipients: c.MaxRecipients, MaxChangeOutput: c.MaxChangeOutput,
		Links: map[catalog.Site]string{
			catalog.SitePortal: c.PortalURL, catalog.SiteService: c.ServiceURL, catalog.SiteAnalytics: c.AnalyticsURL,
		},
	}
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	return cfg, errors.Join(errs...)
}
