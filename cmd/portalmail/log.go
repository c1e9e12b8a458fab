package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// LogConfig selects the log format and level.
type LogConfig struct {
	Format string
	Level  string
}

func (c *LogConfig) register(f *flags) {
	f.String(&c.Format, "log-format", "json", "log format: json or text")
	f.String(&c.Level, "log-level", "info", "log level: debug, info, warn or error")
}

func (c LogConfig) validate() error {
	var errs []string
	if c.Format != "json" && c.Format != "text" {
		errs = append(errs, fmt.Sprintf("--log-format %q: want json or text", c.Format))
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.Level)); err != nil {
		errs = append(errs, fmt.Sprintf("--log-level %q: want debug, info, warn or error", c.Level))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// logger is the one logger of the process; libraries are bridged into it.
func (c LogConfig) logger(w io.Writer) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: l}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
