package state

import (
	"context"
	"fmt"
	"testing"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/processor/catalog"
)

func TestBandsHysteresis(t *testing.T) {
	const (
		none  = ""
		usage = "usage"
		over  = "over"
	)
	type sample struct {
		x    int
		want string
	}
	tests := []struct {
		name    string
		samples []sample
	}{
		{"design sequence", []sample{
			{50, none}, {80, usage}, {85, none}, {75, none}, {69, none}, // 69 re-arms usage
			{81, usage}, {101, over}, {105, none}, {95, none}, {90, none}, // 90 re-arms over
			{102, over}, {100, none}, {60, none}, {80, usage}, {100, none}, {101, over},
		}},
		{"crossing both from armed sends over only and disarms usage", []sample{
			{120, over}, {85, none}, {99, none}, {70, none}, {69, none}, {80, usage},
		}},
		{"boundaries", []sample{
			{79, none}, {100, usage}, {70, none}, {80, none}, {69, none}, {100, usage},
			{101, over}, {91, none}, {101, none}, {90, none}, {101, over},
		}},
		{"zero and huge", []sample{{0, none}, {5000, over}, {0, none}, {79, none}, {80, usage}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestStore(t)
			ctx := context.Background()
			// once one sample per call, once all in one batch
			for _, batch := range []bool{false, true} {
				key := fmt.Sprintf("sub-%v", batch)
				var samples []processor.BandSample
				for i, sm := range tc.samples {
					samples = append(samples, processor.BandSample{Key: key, Position: int64(1000 + i), Percent: sm.x})
				}
				var got []processor.BandResult
				if batch {
					r, err := s.Bands(ctx, catalog.DefaultBands, samples)
					if err != nil {
						t.Fatal(err)
					}
					got = r
				} else {
					for _, sm := range samples {
						r, err := s.Bands(ctx, catalog.DefaultBands, []processor.BandSample{sm})
						if err != nil {
							t.Fatal(err)
						}
						got = append(got, r...)
					}
				}
				for i, sm := range tc.samples {
					g := none
					switch {
					case got[i].Usage && got[i].Over:
						g = "both"
					case got[i].Usage:
						g = usage
					case got[i].Over:
						g = over
					}
					if g != sm.want {
						t.Errorf("batch=%v sample %d (X=%d): fired %q, want %q", batch, i, sm.x, g, sm.want)
					}
				}
			}
		})
	}
}

func TestBandsReplayAndOrder(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	band := func(pos int64, x int) processor.BandResult {
		t.Helper()
		r, err := s.Bands(ctx, catalog.Bands{}, []processor.BandSample{{Key: "k", Position: pos, Percent: x}})
		if err != nil {
			t.Fatal(err)
		}
		return r[0]
	}
	if r := band(5, 85); !r.Usage {
		t.Fatalf("first 85: %+v", r)
	}
	// replay of the same position, whatever its value: the same result
	if r := band(5, 85); !r.Usage || r.Over {
		t.Fatalf("replay: %+v", r)
	}
	if r := band(5, 10); !r.Usage {
		t.Fatalf("replay with another value: %+v", r)
	}
	// an older unknown position fires nothing and changes nothing
	if r := band(4, 120); r.Usage || r.Over {
		t.Fatalf("older: %+v", r)
	}
	if r := band(3, 10); r.Usage || r.Over {
		t.Fatalf("older: %+v", r)
	}
	if r := band(6, 85); r.Usage || r.Over { // 3's re-arm did not count
		t.Fatalf("after older samples: %+v", r)
	}
	if r := band(7, 120); !r.Over {
		t.Fatalf("over: %+v", r)
	}
	if r := band(5, 85); !r.Usage { // still remembered
		t.Fatalf("replay of 5 later: %+v", r)
	}
	// positions beyond 2^53
	if r := band(9007199254740992, 50); r.Usage || r.Over {
		t.Fatalf("%+v", r)
	}
	if r := band(9007199254740993, 85); !r.Usage {
		t.Fatalf("2^53+1 after 2^53 must evaluate: %+v", r)
	}
	if r := band(9007199254740992, 85); r.Usage || r.Over {
		t.Fatalf("replay of 2^53 must give its own result: %+v", r)
	}
	// forgotten after 16 newer positions: older than latest, fires nothing
	for p := int64(9007199254740994); p < 9007199254740994+16; p++ {
		band(p, 50)
	}
	if r := band(9007199254740993, 85); r.Usage {
		t.Fatalf("position beyond the remembered window: %+v", r)
	}
}
