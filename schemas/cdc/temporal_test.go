package cdc

import (
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestNormTimestamp(t *testing.T) {
	tests := []struct {
		name string
		v    any
		sem  string
		want string
		err  string
	}{
		{"zoned UTC", "2026-03-01T10:15:30.123456Z", semZonedTimestamp, "2026-03-01T10:15:30.123456Z", ""},
		{"zoned offset", "2026-03-01T12:15:30+02:00", semZonedTimestamp, "2026-03-01T10:15:30Z", ""},
		{"zoned negative offset", "2026-02-28T23:00:00-05:00", semZonedTimestamp, "2026-03-01T04:00:00Z", ""},
		{"hour-only offset", "2026-03-01T12:15:30.5+02", "", "2026-03-01T10:15:30.5Z", ""},
		{"space separated", "2026-03-01 10:15:30.123", "", "2026-03-01T10:15:30.123Z", ""},
		{"no zone is UTC", "2026-03-01T10:15:30", "", "2026-03-01T10:15:30Z", ""},
		{"already normal", "2026-03-01T10:15:30.123Z", "", "2026-03-01T10:15:30.123Z", ""},
		{"date only", "2026-03-01", "", "2026-03-01T00:00:00Z", ""},
		{"Timestamp ms", json.Number("1772360130123"), semTimestamp, "2026-03-01T10:15:30.123Z", ""},
		{"connect Timestamp ms", int64(1772360130123), semConnectTimestamp, "2026-03-01T10:15:30.123Z", ""},
		{"MicroTimestamp", json.Number("1772360130123456"), semMicroTimestamp, "2026-03-01T10:15:30.123456Z", ""},
		{"NanoTimestamp", json.Number("1772360130123456789"), semNanoTimestamp, "2026-03-01T10:15:30.123456789Z", ""},
		{"Date days on a timestamp column", int32(20513), semDate, "2026-03-01T00:00:00Z", ""},
		// The semantic type wins over the magnitude: 1e11 µs is a day after the epoch, not 1973.
		{"MicroTimestamp small", int64(100_000_000_000), semMicroTimestamp, "1970-01-02T03:46:40Z", ""},
		{"heuristic millis", int64(100_000_000_000), "", "1973-03-03T09:46:40Z", ""},
		{"heuristic micros", json.Number("1772360130123456"), "", "2026-03-01T10:15:30.123456Z", ""},
		{"heuristic nanos", json.Number("1772360130123456789"), "", "2026-03-01T10:15:30.123456789Z", ""},
		{"heuristic negative millis", int64(-86_400_000), "", "1969-12-31T00:00:00Z", ""},
		{"integral float", 1.772360130123e12, "", "2026-03-01T10:15:30.123Z", ""},
		{"exponent number", json.Number("1.772360130123e12"), "", "2026-03-01T10:15:30.123Z", ""},
		{"numeric string", "1772360130123", semTimestamp, "2026-03-01T10:15:30.123Z", ""},
		{"time.Time", time.Date(2026, 3, 1, 11, 15, 30, 0, time.FixedZone("CET", 3600)), "", "2026-03-01T10:15:30Z", ""},
		{"garbage", "soon", "", "", `unparsable timestamp string "soon"`},
		{"object", map[string]any{}, "", "", "cannot use object as timestamp"},
		{"fraction", json.Number("1.5"), "", "", "cannot use number 1.5 as timestamp"},
		{"year 10000", "10000-01-01T00:00:00Z", "", "", "unparsable timestamp"},
		{"millis past 9999", int64(1e16), semTimestamp, "", "year 318857 out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := normValue(tt.v, Timestamp, tt.sem)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %q, %v; want error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestNormDate(t *testing.T) {
	tests := []struct {
		name string
		v    any
		sem  string
		want string
		err  string
	}{
		{"Date days", int32(20513), semDate, "2026-03-01", ""},
		{"connect Date days", json.Number("20513"), semConnectDate, "2026-03-01", ""},
		{"schemaless days", json.Number("20877"), "", "2027-02-28", ""},
		{"negative days", int64(-1), "", "1969-12-31", ""},
		{"epoch", int64(0), "", "1970-01-01", ""},
		{"ISO date", "2026-03-01", "", "2026-03-01", ""},
		{"timestamp string keeps its calendar date", "2026-03-01T00:30:00+02:00", "", "2026-03-01", ""},
		{"MicroTimestamp on a date column", int64(1772360130123456), semMicroTimestamp, "2026-03-01", ""},
		{"time.Time (Avro date)", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), semConnectDate, "2026-03-01", ""},
		{"numeric string", "20513", "", "2026-03-01", ""},
		{"garbage", "tomorrow", "", "", `unparsable date string "tomorrow"`},
		{"boolean", false, "", "", "cannot use boolean false as date"},
		{"out of range", int64(3_000_000), semDate, "", "year 10183 out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := normValue(tt.v, Date, tt.sem)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %q, %v; want error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestNormValue(t *testing.T) {
	tests := []struct {
		name string
		v    any
		typ  ColumnType
		want any
		err  string
	}{
		{"null", nil, Integer, nil, ""},
		{"text string", "Acme", Text, "Acme", ""},
		{"text number", json.Number("12.50"), Text, "12.50", ""},
		{"text int32", int32(7), Text, "7", ""},
		{"text float", 0.25, Text, "0.25", ""},
		{"text bool", true, Text, "true", ""},
		{"text decimal", big.NewRat(129900, 100), Text, "1299", ""},
		{"text fractional decimal", big.NewRat(12995, 100), Text, "129.95", ""},
		{"text array", []any{"a"}, Text, nil, "cannot use array as text"},
		{"text bytes", []byte("x"), Text, nil, "cannot use bytes as text"},
		{"integer number", json.Number("25"), Integer, int64(25), ""},
		{"integer int32", int32(25), Integer, int64(25), ""},
		{"integer float", float64(25), Integer, int64(25), ""},
		{"integer string", "25", Integer, int64(25), ""},
		{"integer huge", json.Number("1e30"), Integer, nil, "cannot use number 1e30 as integer"},
		{"integer bool", true, Integer, nil, "cannot use boolean true as integer"},
		{"boolean", false, Boolean, false, ""},
		{"boolean string", "true", Boolean, true, ""},
		{"boolean 1", json.Number("1"), Boolean, true, ""},
		{"boolean 2", json.Number("2"), Boolean, nil, "cannot use number 2 as boolean"},
		{"array strings", []string{"a", "b"}, TextArray, []string{"a", "b"}, ""},
		{"array any", []any{"a", nil, json.Number("3")}, TextArray, []string{"a", "3"}, ""},
		{"array empty", []any{}, TextArray, []string{}, ""},
		{"array object", map[string]any{"a": 1}, TextArray, nil, "cannot use object as text array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := normValue(tt.v, tt.typ, "")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %#v, %v; want error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch w := tt.want.(type) {
			case []string:
				g, ok := got.([]string)
				if !ok || strings.Join(g, "|") != strings.Join(w, "|") || len(g) != len(w) {
					t.Fatalf("got %#v, want %#v", got, w)
				}
			default:
				if got != tt.want {
					t.Fatalf("got %#v (%T), want %#v (%T)", got, got, tt.want, tt.want)
				}
			}
		})
	}
}
