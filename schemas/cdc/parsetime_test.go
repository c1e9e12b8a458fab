package cdc

import (
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2027-03-01", time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC), true},
		{" 2027-03-01 ", time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC), true},
		{"2027-03-01T10:20:30.123456Z", time.Date(2027, 3, 1, 10, 20, 30, 123456000, time.UTC), true},
		{"2027-03-01T10:20:30+02:00", time.Date(2027, 3, 1, 8, 20, 30, 0, time.UTC), true},
		{"2027-03-01T10:20:30.5", time.Date(2027, 3, 1, 10, 20, 30, 500000000, time.UTC), true},
		{"2027-03-01 10:20:30Z", time.Date(2027, 3, 1, 10, 20, 30, 0, time.UTC), true},
		{"2027-03-01 10:20:30", time.Date(2027, 3, 1, 10, 20, 30, 0, time.UTC), true},
		{"infinity", Forever, true},
		{"-infinity", LongAgo, true},
		{"2027-13-01", time.Time{}, false},
		{"2027-3-1", time.Time{}, false},
		{"01/03/2027", time.Time{}, false},
		{"", time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseTime(tt.in)
		if ok != tt.ok || !got.Equal(tt.want) || (ok && got.Location() != time.UTC) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
