package processor

import (
	"strings"
	"testing"

	"github.com/portalmail/portalmail/schemas"
)

// TestPlaceJobsGroupsByChange checks the order build emits jobs in: by
// change, changes in the order of their first job, each change's jobs in the
// order made, a capped change's left out, after the jobs already there.
func TestPlaceJobsGroupsByChange(t *testing.T) {
	for _, tc := range []struct {
		name   string
		dst    string // keys already in dst
		jobs   string // keys made, in order
		owner  []int
		capped []bool
		want   string
	}{
		{name: "one after another", jobs: "a1 a2 b1 c1", owner: []int{0, 0, 1, 2}, capped: make([]bool, 3), want: "a1 a2 b1 c1"},
		{name: "after earlier jobs", dst: "x1", jobs: "a1 b1", owner: []int{0, 1}, capped: make([]bool, 2), want: "x1 a1 b1"},
		{name: "interleaved", jobs: "a1 b1 a2 c1 b2", owner: []int{0, 1, 0, 2, 1}, capped: make([]bool, 3), want: "a1 a2 b1 b2 c1"},
		{name: "interleaved after earlier jobs", dst: "x1 x2", jobs: "a1 b1 a2", owner: []int{0, 1, 0}, capped: make([]bool, 2), want: "x1 x2 a1 a2 b1"},
		{name: "capped in order", jobs: "a1 b1 b2 c1", owner: []int{0, 1, 1, 2}, capped: []bool{false, true, false}, want: "a1 c1"},
		{name: "capped interleaved", jobs: "a1 b1 a2 c1", owner: []int{0, 1, 0, 2}, capped: []bool{true, false, false}, want: "b1 c1"},
		{name: "none", jobs: "", owner: nil, capped: nil, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := placeJobs(jobsOf(tc.dst), jobsOf(tc.jobs), tc.owner, tc.capped)
			if keys := keysOf(got); keys != tc.want {
				t.Errorf("placeJobs = %q, want %q", keys, tc.want)
			}
		})
	}
}

func jobsOf(keys string) []schemas.EmailJob {
	var out []schemas.EmailJob
	for _, k := range strings.Fields(keys) {
		out = append(out, schemas.EmailJob{Key: k})
	}
	return out
}

func keysOf(jobs []schemas.EmailJob) string {
	var keys []string
	for _, j := range jobs {
		keys = append(keys, j.Key)
	}
	return strings.Join(keys, " ")
}
