package main

import (
	"net/http"
	"time"
)

// serverLimits bound what one client can hold of an HTTP server: a client
// that trickles its headers or body, or keeps an idle connection open, is cut
// off when its timeout runs out, and headers are capped. Zero fields take
// the defaults of the server at hand.
type serverLimits struct {
	// ReadHeader bounds reading the request line and headers; Read the
	// whole request, body included; Write from the end of the headers to
	// the end of the response; Idle a keep-alive connection between requests.
	ReadHeader, Read, Write, Idle time.Duration
	// MaxHeaderBytes caps the request line and headers (431 beyond).
	MaxHeaderBytes int
}

// Defaults: the ops endpoints (/metrics, /healthz, /readyz; GET only, the
// readiness checks bounded by --ready-timeout) and the webhook endpoint
// (bodies up to 1 MiB from Mailgun, recording bounded by 10 s).
var (
	opsLimits     = serverLimits{ReadHeader: 5 * time.Second, Read: 10 * time.Second, Write: 30 * time.Second, Idle: time.Minute, MaxHeaderBytes: 64 << 10}
	webhookLimits = serverLimits{ReadHeader: 5 * time.Second, Read: 15 * time.Second, Write: 30 * time.Second, Idle: time.Minute, MaxHeaderBytes: 64 << 10}
)

// or returns l with its zero fields taken from def.
func (l serverLimits) or(def serverLimits) serverLimits {
	pick := func(v, d time.Duration) time.Duration {
		if v == 0 {
			return d
		}
		return v
	}
	l.ReadHeader, l.Read, l.Write, l.Idle = pick(l.ReadHeader, def.ReadHeader), pick(l.Read, def.Read), pick(l.Write, def.Write), pick(l.Idle, def.Idle)
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = def.MaxHeaderBytes
	}
	return l
}

// newServer is every portalmail HTTP server: h behind the limits l.
func newServer(addr string, h http.Handler, l serverLimits) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeader,
		ReadTimeout:       l.Read,
		WriteTimeout:      l.Write,
		IdleTimeout:       l.Idle,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
}
