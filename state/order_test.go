package state

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os/exec"
	"reflect"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/schemas/cdc"
	"github.com/redis/go-redis/v9"
)

func TestRounds(t *testing.T) {
	sc := &script{name: "x"}
	plain := func(order ...string) op { return op{order: order} }
	tests := []struct {
		name string
		ops  []op
		want []int
	}{
		{"independent keys: one round", []op{{script: sc, keys: []string{"a"}}, {script: sc, keys: []string{"b"}}, {script: sc, keys: []string{"c"}}}, []int{0, 0, 0}},
		{"a key written twice: in order, two rounds", []op{{script: sc, keys: []string{"a"}}, {script: sc, keys: []string{"b"}}, {script: sc, keys: []string{"a"}}}, []int{0, 0, 1}},
		{"three changes of one row", []op{{script: sc, keys: []string{"r", "p"}}, {script: sc, keys: []string{"r", "p"}}, {script: sc, keys: []string{"q"}}, {script: sc, keys: []string{"r", "p"}}}, []int{0, 1, 0, 2}},
		{"shared reads do not conflict", []op{{script: sc, keys: []string{"t", "a"}, shared: []string{"t"}}, {script: sc, keys: []string{"t", "b"}, shared: []string{"t"}}}, []int{0, 0}},
		{"a write after shared reads waits for them", []op{{script: sc, keys: []string{"t", "a"}, shared: []string{"t"}}, {script: sc, keys: []string{"t", "b"}}, {script: sc, keys: []string{"t", "c"}, shared: []string{"t"}}}, []int{0, 1, 2}},
		{"members of one set are independent", []op{plain(memberOf("z", "m1")), plain(memberOf("z", "m2")), {script: sc, keys: []string{"z", "l"}, order: []string{memberOf("z", "m3")}}}, []int{0, 0, 0}},
		{"cancel then schedule one member: in order", []op{plain(memberOf("z", "m")), {script: sc, keys: []string{"r"}}, plain(memberOf("z", "m"))}, []int{0, 0, 1}},
		{"a member after its whole key: in order", []op{{script: sc, keys: []string{"z"}}, plain(memberOf("z", "m"))}, []int{0, 1}},
		{"a whole key after one of its members: in order", []op{plain(memberOf("z", "m1")), plain(memberOf("z", "m2")), {script: sc, keys: []string{"z"}}}, []int{0, 0, 1}},
		{"a member after a shared read of its key: in order", []op{{script: sc, keys: []string{"z", "a"}, shared: []string{"z"}}, plain(memberOf("z", "m"))}, []int{0, 1}},
		{"a shared read of a key after one of its members: in order", []op{plain(memberOf("z", "m")), {script: sc, keys: []string{"z", "a"}, shared: []string{"z"}}}, []int{0, 1}},
		{"members of another key: independent", []op{{script: sc, keys: []string{"z"}}, plain(memberOf("y", "m")), plain(memberOf("zz", "m"))}, []int{0, 0, 0}},
		{"an op without keys is a barrier", []op{{script: sc, keys: []string{"a"}}, {plain: nil}, {script: sc, keys: []string{"b"}}}, []int{0, 1, 2}},
		{"no scripts: one pipeline whatever the keys", []op{plain("a"), plain("a"), plain("a")}, []int{0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := rounds(tt.ops)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("rounds %v, want %v", got, tt.want)
			}
			wantN := 0
			for _, r := range tt.want {
				wantN = max(wantN, r+1)
			}
			if n != wantN {
				t.Fatalf("%d rounds, want %d", n, wantN)
			}
		})
	}
}

// loadMidPipeline is another client loading a script while our pipeline
// is being executed: the first pipeline that starts with an EVALSHA has
// its first command executed, then the script loaded (as a second
// portalmail instance's EVAL would), then the rest.
type loadMidPipeline struct {
	loader redis.UniversalClient
	src    string
	armed  atomic.Bool
	fired  atomic.Bool
}

func (h *loadMidPipeline) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *loadMidPipeline) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *loadMidPipeline) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) == 0 || cmds[0].Name() != "evalsha" || !h.armed.CompareAndSwap(true, false) {
			return next(ctx, cmds)
		}
		h.fired.Store(true)
		err := next(ctx, cmds[:1])
		if lerr := h.loader.ScriptLoad(ctx, h.src).Err(); lerr != nil {
			return lerr
		}
		if len(cmds) > 1 {
			err = errors.Join(err, next(ctx, cmds[1:]))
		}
		return err
	}
}

// flushableRedis is a Redis the test may SCRIPT FLUSH: a redis-server of
// its own, or miniredis without one.
func flushableRedis(t *testing.T) (c, loader redis.UniversalClient) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err == nil {
		c = ownRedis(t)
		loader = redis.NewClient(&redis.Options{Addr: c.(*redis.Client).Options().Addr})
	} else {
		mr := miniredis.RunT(t)
		c = redis.NewClient(&redis.Options{Addr: mr.Addr()})
		loader = redis.NewClient(&redis.Options{Addr: mr.Addr()})
	}
	t.Cleanup(func() { _ = c.Close(); _ = loader.Close() })
	return c, loader
}

// TestNoScriptRetryKeepsOrder: when the scripts are not cached and another
// client loads one while our pipeline runs, the commands after the first
// succeed and the first is retried: two changes of one row, or two usage
// samples of one subscription, must still be evaluated in their order.
// Before, the retried first one came after the second and was taken as
// late news: its email was lost (a 3-instance benchmark on a Redis Cluster
// lost 12 usage emails this way).
func TestNoScriptRetryKeepsOrder(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T, opts Options, sc *script) (*Store, *loadMidPipeline) {
		c, loader := flushableRedis(t)
		if err := c.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		h := &loadMidPipeline{loader: loader, src: sc.src}
		h.armed.Store(true)
		c.AddHook(h)
		return New(c, opts), h
	}

	t.Run("usage samples", func(t *testing.T) {
		s, h := setup(t, Options{}, scriptBands)
		samples := []processor.BandSample{
			{Key: "sub-1", Position: lsn(1), Percent: 85}, // fires the 80 % line
			{Key: "sub-1", Position: lsn(2), Percent: 50}, // re-arms it
		}
		got, err := s.Bands(ctx, catalog.DefaultBands, samples)
		if err != nil {
			t.Fatal(err)
		}
		if !h.fired.Load() {
			t.Fatal("the hook never ran")
		}
		if want := []processor.BandResult{{Usage: true}, {}}; !reflect.DeepEqual(got, want) {
			t.Fatalf("bands %v, want %v (the 85 %% sample evaluated after the 50 %% one)", got, want)
		}
	})

	for _, single := range []bool{false, true} {
		name := "row changes, chunked scripts"
		sc := scriptApplyMany
		if single {
			name, sc = "row changes, one script per change (Cluster)", scriptApply
		}
		t.Run(name, func(t *testing.T) {
			s, h := setup(t, Options{SingleRowScripts: single}, sc)
			// c1's create in the first chunk, its update in the second.
			changes := []processor.RowChange{chg(tCompanies, "c1", 1, cdc.Row{"id": "c1", "status": "trial"})}
			for i := range applyChunk {
				changes = append(changes, chg(tCompanies, fmt.Sprintf("o%d", i), int64(10+i), cdc.Row{"id": fmt.Sprintf("o%d", i)}))
			}
			changes = append(changes, chg(tCompanies, "c1", 5000, cdc.Row{"id": "c1", "status": "active"}))
			res, err := s.ApplyChanges(ctx, changes)
			if err != nil {
				t.Fatal(err)
			}
			if !h.fired.Load() {
				t.Fatal("the hook never ran")
			}
			first, last := res[0], res[len(res)-1]
			if first.Outcome != processor.Applied || last.Outcome != processor.Applied {
				t.Fatalf("c1's create %v, its update %v: want both applied, in order", first.Outcome, last.Outcome)
			}
			if last.Prev.Str("status") != "trial" || last.Next.Str("status") != "active" {
				t.Fatalf("c1's update: %v → %v, want trial → active", last.Prev, last.Next)
			}
		})
	}
}

// TestPositionNumbersCompareExactly runs scripts/common.lua's pm_cmp on the
// server (the real one at REDIS_URL, else miniredis' Lua) over pairs chosen
// at its edges (lengths, signs, 15-digit boundaries, numbers past 2^53 that
// differ only in their last digit) and over random pairs, against math/big.
func TestPositionNumbersCompareExactly(t *testing.T) {
	_, env := newTestStore(t)
	common, err := scriptFS.ReadFile("scripts/common.lua")
	if err != nil {
		t.Fatal(err)
	}
	cmp := redis.NewScript(string(common) + `
local out = {}
for i = 1, #ARGV, 2 do out[#out + 1] = pm_cmp(ARGV[i], ARGV[i + 1]) end
return out`)
	pairs := [][2]string{
		{"0", "0"}, {"0", "1"}, {"9", "10"}, {"-1", "0"}, {"-1", "-2"}, {"-10", "-9"}, {"-5", "5"},
		{"9007199254740993", "9007199254740992"}, {"9223372036854775807", "9223372036854775806"},
		{"100000000000000", "100000000000001"}, {"1000000000000001", "1000000000000002"},
		{"999999999999999", "1000000000000000"}, {"123456789012345678", "123456789012345679"},
		{"223456789012345678", "123456789012345679"}, {"-9223372036854775807", "-9223372036854775806"},
		{"123456789012345678901234567890", "123456789012345678901234567891"},
		{"103040190", "103040644"}, {"103040644", "103040190"},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		a, b := rng.Int64(), rng.Int64()
		if rng.IntN(3) == 0 {
			b = a + int64(rng.IntN(2000)) - 1000 // same length, a shared prefix
		}
		if rng.IntN(4) == 0 {
			a, b = -a, -b
		}
		pairs = append(pairs, [2]string{strconv.FormatInt(a, 10), strconv.FormatInt(b, 10)})
	}
	var args []any
	for _, p := range pairs {
		args = append(args, p[0], p[1])
	}
	got, err := cmp.Run(context.Background(), env.c, nil, args...).Int64Slice()
	if err != nil || len(got) != len(pairs) {
		t.Fatalf("pm_cmp: %v (%d results for %d pairs)", err, len(got), len(pairs))
	}
	for i, p := range pairs {
		a, _ := new(big.Int).SetString(p[0], 10)
		b, _ := new(big.Int).SetString(p[1], 10)
		if want := int64(a.Cmp(b)); got[i] != want {
			t.Errorf("pm_cmp(%s, %s) = %d, want %d", p[0], p[1], got[i], want)
		}
	}
}
