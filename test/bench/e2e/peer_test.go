package e2e

import (
	"testing"

	"github.com/portalmail/portalmail/processor/catalog"
)

// TestRulesOfExportsTheCatalog: the peer gets every transition of the
// catalog with its movement, and the usage threshold with both levels' types.
func TestRulesOfExportsTheCatalog(t *testing.T) {
	types := catalog.Default()
	r, err := rulesOf(types)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, e := range types {
		if tr, ok := e.Trigger.(catalog.Transition); ok {
			want++
			if _, named := changeNames[tr.Change]; !named {
				t.Errorf("%s: change kind %d has no name for the peer", e.ID, tr.Change)
			}
		}
	}
	if len(r.Transitions) != want || want == 0 {
		t.Errorf("%d transitions exported, the catalog has %d", len(r.Transitions), want)
	}
	for _, p := range r.Transitions {
		if p.Change == "" || p.Table == "" || (!p.Create && p.Field == "") {
			t.Errorf("incomplete rule %+v", p)
		}
	}
	th := r.Threshold
	if th.Table == "" || th.CapacityTable == "" || th.UsageType == "" || th.OverType == "" || th.UsageType == th.OverType {
		t.Errorf("threshold %+v", th)
	}
	if r.Bands.UsageAt != catalog.DefaultBands.UsageAt || r.Bands.OverRearmAtOrBelow != catalog.DefaultBands.OverRearmAtOrBelow {
		t.Errorf("bands %+v", r.Bands)
	}
	// A catalog with two threshold tables cannot be exported.
	two := append([]catalog.EmailType{}, types...)
	for _, e := range types {
		if th, ok := e.Trigger.(catalog.Threshold); ok {
			th.Table = "other"
			e.Trigger = th
			two = append(two, e)
			break
		}
	}
	if _, err := rulesOf(two); err == nil {
		t.Error("two threshold tables exported")
	}
}
