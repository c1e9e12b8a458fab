package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/plugin/kslog"

	"github.com/portalmail/portalmail/internal/redact"
)

// KafkaConfig is how a stage reaches Kafka and the schema registry.
type KafkaConfig struct {
	Brokers       string
	SASLMechanism string
	SASLUser      string
	SASLPassword  string
	TLS           bool
	TLSCA         string
	TLSCert       string
	TLSKey        string
	Registry      string
	RegistryUser  string
	RegistryPass  string
	JobsTopic     string
	Deliveries    string
	DLQTopic      string
	// SessionTimeout is how long the group waits for a silent member before
	// moving its partitions (a crashed instance's partitions wait this long).
	SessionTimeout time.Duration
	// Compression is the codec of the batches the stage produces (one of
	// compressionCodecs).
	Compression string
}

// compressionCodecs are the values --compression takes, codecNames says
// them in the help and the errors.
var compressionCodecs = map[string]kgo.CompressionCodec{
	"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
	"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
}

const codecNames = "none, gzip, snappy, lz4 or zstd"

func (c *KafkaConfig) register(f *flags) {
	f.String(&c.Brokers, "brokers", "127.0.0.1:9092", "comma-separated Kafka seed brokers")
	f.String(&c.SASLMechanism, "sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: none)")
	f.String(&c.SASLUser, "sasl-user", "", "SASL user")
	f.Secret(&c.SASLPassword, "sasl-password", "SASL password")
	f.Bool(&c.TLS, "tls", false, "connect to Kafka with TLS")
	f.String(&c.TLSCA, "tls-ca", "", "PEM file of CAs to trust (default: the system's)")
	f.String(&c.TLSCert, "tls-cert", "", "PEM client certificate for mutual TLS")
	f.String(&c.TLSKey, "tls-key", "", "PEM client key for mutual TLS")
	f.String(&c.Registry, "schema-registry", "http://127.0.0.1:8081", "schema registry URL(s), comma-separated")
	f.String(&c.RegistryUser, "schema-registry-user", "", "schema registry basic-auth user")
	f.Secret(&c.RegistryPass, "schema-registry-password", "schema registry basic-auth password")
	f.String(&c.JobsTopic, "jobs-topic", "portalmail.email-jobs", "topic of email jobs")
	f.String(&c.Deliveries, "deliveries-topic", "portalmail.email-deliveries", "topic of delivery records")
	f.String(&c.DLQTopic, "dlq-topic", "portalmail.dlq", "dead-letter topic")
	f.Duration(&c.SessionTimeout, "session-timeout", 45*time.Second, "consumer-group session timeout: how soon a crashed instance's partitions move")
	f.String(&c.Compression, "compression", "lz4", "codec of the record batches produced: "+codecNames+" (lz4 halves the broker's CPU for the jobs topic)")
}

func (c KafkaConfig) validate() error {
	var errs []error
	if strings.TrimSpace(c.Brokers) == "" {
		errs = append(errs, errors.New("--brokers is required"))
	}
	switch strings.ToUpper(c.SASLMechanism) {
	case "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		errs = append(errs, fmt.Errorf("--sasl-mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASLMechanism))
	}
	if c.SASLMechanism != "" && (c.SASLUser == "" || c.SASLPassword == "") {
		errs = append(errs, errors.New("--sasl-user and --sasl-password are required with --sasl-mechanism"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	}
	if c.Registry == "" {
		errs = append(errs, errors.New("--schema-registry is required"))
	} else if _, err := c.registryAuth(); err != nil {
		errs = append(errs, err)
	}
	if c.SessionTimeout < 6*time.Second {
		errs = append(errs, errors.New("--session-timeout must be at least 6s (the brokers' minimum)"))
	}
	if _, err := c.codec(); err != nil {
		errs = append(errs, err)
	}
	if c.JobsTopic == "" || c.Deliveries == "" || c.DLQTopic == "" {
		errs = append(errs, errors.New("topic names must not be empty"))
	}
	return errors.Join(errs...)
}

// codec is --compression's codec.
func (c KafkaConfig) codec() (kgo.CompressionCodec, error) {
	codec, ok := compressionCodecs[strings.ToLower(c.Compression)]
	if !ok {
		return kgo.CompressionCodec{}, fmt.Errorf("--compression %q: want %s", c.Compression, codecNames)
	}
	return codec, nil
}

// clientOpts are the franz-go options for seeds, SASL, TLS, compression and
// logging.
func (c KafkaConfig) clientOpts(log *slog.Logger) ([]kgo.Opt, error) {
	codec, err := c.codec()
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(strings.Split(c.Brokers, ",")...),
		kgo.ProducerBatchCompression(codec),
		kgo.WithLogger(kafkaLogger{kslog.New(log)}),
		kgo.SessionTimeout(c.SessionTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, c.SessionTimeout/3)),
	}
	switch strings.ToUpper(c.SASLMechanism) {
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha512Mechanism()))
	}
	if c.TLS {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.TLSCA != "" {
			pem, err := os.ReadFile(c.TLSCA)
			if err != nil {
				return nil, fmt.Errorf("--tls-ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--tls-ca %s: no certificates", c.TLSCA)
			}
			cfg.RootCAs = pool
		}
		if c.TLSCert != "" {
			cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
			if err != nil {
				return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	return opts, nil
}

// registryConn is where and how the schema registry is reached: URLs without
// credentials, and the basic-auth credentials (from the flags, or taken out
// of the URLs).
type registryConn struct {
	urls       []string
	user, pass string
}

// registryAuth takes --schema-registry apart. Credentials in the URLs
// (http://user:pass@host) become basic auth, so that no URL the registry
// client formats into its errors (start-up, /readyz) holds them. Malformed
// URLs, queries and fragments are refused; errors show the flag redacted.
func (c KafkaConfig) registryAuth() (registryConn, error) {
	shown := redact.URL(c.Registry)
	rc := registryConn{user: c.RegistryUser, pass: c.RegistryPass}
	parts := strings.Split(c.Registry, ",")
	var fromURL *url.Userinfo
	for i, raw := range parts {
		u, err := url.Parse(strings.TrimSpace(raw))
		switch {
		case err != nil:
			return rc, fmt.Errorf("--schema-registry %s: URL %d of %d is malformed: %s", shown, i+1, len(parts), redact.ParseError(err))
		case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			return rc, fmt.Errorf("--schema-registry %s: URL %d of %d is not an absolute http(s) URL", shown, i+1, len(parts))
		case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
			return rc, fmt.Errorf("--schema-registry %s: URL %d of %d has a query or fragment (credentials go in --schema-registry-user and --schema-registry-password)", shown, i+1, len(parts))
		}
		if u.User != nil {
			if fromURL != nil && fromURL.String() != u.User.String() {
				return rc, fmt.Errorf("--schema-registry %s: the URLs carry different credentials", shown)
			}
			fromURL = u.User
			u.User = nil
		}
		rc.urls = append(rc.urls, u.String())
	}
	if fromURL != nil {
		if c.RegistryUser != "" {
			return rc, fmt.Errorf("--schema-registry %s carries credentials, and --schema-registry-user is set too: use one", shown)
		}
		rc.user = fromURL.Username()
		rc.pass, _ = fromURL.Password()
	}
	return rc, nil
}

// registry is the schema-registry client.
func (c KafkaConfig) registry() (*sr.Client, error) {
	rc, err := c.registryAuth()
	if err != nil {
		return nil, err
	}
	opts := []sr.ClientOpt{sr.URLs(rc.urls...)}
	if rc.user != "" {
		opts = append(opts, sr.BasicAuth(rc.user, rc.pass))
	}
	return sr.NewClient(opts...)
}

// kafkaLogger is franz-go's slog logger with the messages it writes at info
// level for every transaction (txnChatter) written at debug level: a stage
// commits a transaction per batch, many a second, and those seven lines of
// each (one of them every committed offset) were most of its log and a few
// per cent of its CPU. Group, partition and producer events stay at info.
type kafkaLogger struct{ kgo.Logger }

// txnChatter are the info messages of franz-go's transaction cycle.
var txnChatter = map[string]bool{
	"beginning transact session":                     true,
	"beginning transaction":                          true,
	"flushing":                                       true,
	"transaction session ending":                     true,
	"ending transaction":                             true,
	"end transaction response successfully received": true,
	"transact session successful, setting to newly committed state": true,
}

// Log implements kgo.Logger.
func (l kafkaLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if level == kgo.LogLevelInfo && txnChatter[msg] {
		level = kgo.LogLevelDebug
	}
	l.Logger.Log(level, msg, keyvals...)
}
