package processor

import (
	"math"
	"testing"

	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/schemas/cdc"
)

// TestPercent is floor(100 × calls / licenses) over the whole int64 range:
// no overflow turns a huge sample into a small percentage.
func TestPercent(t *testing.T) {
	th := catalog.Threshold{Value: "concurrent_calls", CapacityField: "concurrent_call_licenses", MinCapacity: 10}
	cases := []struct {
		name            string
		calls, licenses any
		want            int
		ok              bool
	}{
		{"80%", int64(16), int64(20), 80, true},
		{"floor", int64(17), int64(20), 85, true},
		{"just below 80%", int64(159), int64(200), 79, true},
		{"zero calls", int64(0), int64(20), 0, true},
		{"exactly 100%", int64(20), int64(20), 100, true},
		{"2^62 calls, 20 licenses", int64(1) << 62, int64(20), maxPercent, true},
		{"2^62+18 calls, 20 licenses (wrapped to 90 before)", int64(1)<<62 + 18, int64(20), maxPercent, true},
		{"MaxInt64 calls, 20 licenses", int64(math.MaxInt64), int64(20), maxPercent, true},
		{"MaxInt64/100+1 calls, 10 licenses", int64(math.MaxInt64/100 + 1), int64(10), maxPercent, true},
		{"MaxInt64 calls, MaxInt64 licenses", int64(math.MaxInt64), int64(math.MaxInt64), 100, true},
		{"MaxInt64-1 calls, MaxInt64 licenses", int64(math.MaxInt64 - 1), int64(math.MaxInt64), 99, true},
		{"2^62 calls, 2^62 licenses", int64(1) << 62, int64(1) << 62, 100, true},
		{"2^62 calls, 2^61 licenses", int64(1) << 62, int64(1) << 61, 200, true},
		{"huge number as a string", "4611686018427387904", "20", maxPercent, true},
		{"negative calls", int64(-1), int64(20), 0, false},
		{"MinInt64 calls", int64(math.MinInt64), int64(20), 0, false},
		{"negative licenses", int64(16), int64(-20), 0, false},
		{"MinInt64 licenses", int64(16), int64(math.MinInt64), 0, false},
		{"under 10 licenses", int64(16), int64(9), 0, false},
		{"zero licenses", int64(16), int64(0), 0, false},
		{"not a number", "lots", int64(20), 0, false},
	}
	for _, c := range cases {
		got, ok := percent(th, cdc.Row{"concurrent_calls": c.calls}, cdc.Row{"concurrent_call_licenses": c.licenses})
		if got != c.want || ok != c.ok {
			t.Errorf("%s: percent = %d, %v; want %d, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
