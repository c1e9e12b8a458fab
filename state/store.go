package state

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portalmail/portalmail/internal/redact"
	"github.com/portalmail/portalmail/processor"
)

var _ processor.State = (*Store)(nil)

// UsageTable is the table whose rows expire after Options.UsageTTL: usage
// samples are only ever read back as a band's input, so they need not stay.
const UsageTable = "service.public.cvi_usage"

// Options configure a Store. Zero fields take their defaults (see New).
type Options struct {
	// Prefix starts every key (default "pm"). Distinct prefixes isolate
	// deployments (and tests) sharing one Redis.
	Prefix string
	// EmittedTTL is how long an emitted-key marker is kept (default 30 days):
	// a replay older than that is no longer refused by the processor (the
	// sender's SentTTL still guards it).
	EmittedTTL time.Duration
	// SentTTL is how long a "sent" claim is kept (default 30 days).
	SentTTL time.Duration
	// DeletedRetention is how long a deleted row's key is kept (default 7
	// days): long enough for late references and redeliveries to find the
	// delete, short enough that deleted rows do not fill Redis.
	DeletedRetention time.Duration
	// ParkChunk is about how many parked intents an arriving row releases at
	// once (default 500): a row thousands of intents wait for releases them
	// in chunks, bounding a batch's memory, and the engine drains the rest.
	ParkChunk int
	// UsageTTL is the TTL of rows of UsageTable (default 48h), refreshed on
	// every applied change.
	UsageTTL time.Duration
	// SingleRowScripts makes ApplyChanges send one script call per change,
	// as it always does on Redis Cluster, instead of one per chunk of
	// changes (tests use it to cover the Cluster path on one server).
	SingleRowScripts bool
	// Coalesce sends the small batches of many goroutines (at most
	// coalesceOps commands each, as send's claims and marks are) to Redis
	// together, through go-redis's autopipeliner (its ordered, half-duplex
	// face), instead of one round trip per batch on a connection of its own:
	// Redis reads and answers them in one go. Each batch still keeps its
	// commands in order, and a caller still waits for its own replies. Only a
	// standalone or Sentinel client (*redis.Client) coalesces; a Cluster
	// client ignores it. `send` sets it: its workers each make one small
	// round trip per email.
	Coalesce bool
	// TrimDelay defers the trim of a committed row's history (Commit.Rows)
	// by about this long (0: trim in Commit): a change of the row applied
	// meanwhile trims in the same script call, and the separate trim is
	// saved; the others wait at least half of it and go with the commits
	// that follow, a share each (see deferredTrims, FlushTrims). At most
	// TrimMaxRows rows wait (default DefaultTrimMaxRows); beyond, the older
	// ones are trimmed early.
	TrimDelay   time.Duration
	TrimMaxRows int
}

// Defaults of Options, applied by New (zero or negative fields take them).
const (
	DefaultPrefix     = "pm"
	DefaultEmittedTTL = 30 * 24 * time.Hour
	DefaultSentTTL    = 30 * 24 * time.Hour
	DefaultUsageTTL   = 48 * time.Hour

	DefaultDeletedRetention = 7 * 24 * time.Hour
	DefaultParkChunk        = 500
	DefaultTrimMaxRows      = 200_000

	// recentBandResults is how many (position → result) pairs a band keeps
	// for replays.
	recentBandResults = 16

	// coalesceOps is the largest batch Options.Coalesce sends through the
	// autopipeliner; larger ones are a pipeline of their own already.
	coalesceOps = 4
)

// withDefaults is the one place defaults are applied.
func (o Options) withDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.EmittedTTL <= 0 {
		o.EmittedTTL = DefaultEmittedTTL
	}
	if o.SentTTL <= 0 {
		o.SentTTL = DefaultSentTTL
	}
	if o.DeletedRetention <= 0 {
		o.DeletedRetention = DefaultDeletedRetention
	}
	if o.ParkChunk <= 0 {
		o.ParkChunk = DefaultParkChunk
	}
	if o.UsageTTL <= 0 {
		o.UsageTTL = DefaultUsageTTL
	}
	if o.TrimMaxRows <= 0 {
		o.TrimMaxRows = DefaultTrimMaxRows
	}
	return o
}

// Store is the Redis implementation of processor.State, plus the sender's
// dedup claims. It holds no state of its own beyond its options: any number
// of Stores, in any number of processes, may share one Redis, and a Store is
// safe for concurrent use.
//
// Failure behaviour: a method returns the first Redis or decoding error it
// meets. A batch is a pipeline, not a transaction: after an error, any prefix
// of the batch (in Cluster, any subset) may have been written. Every write is
// safe to repeat — re-applying a change is a Replay, re-scheduling or
// re-committing is idempotent — so the caller retries the whole batch.
type Store struct {
	c      redis.UniversalClient
	ap     *redis.AutoPipeliner // set with Options.Coalesce
	opts   Options
	prefix string
	trims  *deferredTrims // nil unless Options.TrimDelay
}

// New returns a Store on c (standalone, Sentinel or Cluster client) with
// opts, defaults applied. It does not contact Redis.
func New(c redis.UniversalClient, opts Options) *Store {
	opts = opts.withDefaults()
	s := &Store{c: c, opts: opts, prefix: escComponent.Replace(opts.Prefix)}
	if opts.TrimDelay > 0 {
		s.trims = newDeferredTrims(opts.TrimDelay, opts.TrimMaxRows, time.Now)
	}
	if cl, ok := c.(*redis.Client); ok && opts.Coalesce {
		// The default options (ordered, one batch in flight) are valid, so
		// this fails only on a bug; the client's Close stops it.
		ap, err := cl.AsyncAutoPipelineWithOptions(redis.DefaultAutoPipelineOptions())
		if err != nil {
			panic(fmt.Sprintf("state: autopipeliner with its default options: %v", err))
		}
		s.ap = ap
	}
	return s
}

// Options returns the options in force, defaults applied.
func (s *Store) Options() Options { return s.opts }

// Client returns the Redis client the Store uses.
func (s *Store) Client() redis.UniversalClient { return s.c }

// Open connects to Redis and pings it. rawURL is one of:
//
//	redis://[[user]:password@]host:port[/db][?options]   standalone (redis.ParseURL; also rediss:// for TLS, unix://)
//	host:port                                            standalone, no auth
//	host:port,host:port,...                              Cluster seed nodes; each element may
//	                                                     also be a redis:// or rediss:// URL, the
//	                                                     first one's credentials and TLS apply
//	redis+sentinel://[[user]:password@]host:port[,host:port]/mastername[/db][?db=N&sentinel_password=P&sentinel_username=U]
//	                                                     Sentinel; the password is the master's
//
// The caller closes the client. On a failed ping the client is closed and
// the error returned. No error shows a password or query of rawURL (they
// are redacted before formatting, see package redact).
func Open(ctx context.Context, rawURL string) (redis.UniversalClient, error) {
	c, err := newClient(rawURL)
	if err != nil {
		return nil, err
	}
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("state: redis ping %s: %w", redact.URL(rawURL), err)
	}
	return c, nil
}

func newClient(rawURL string) (redis.UniversalClient, error) {
	raw := strings.TrimSpace(rawURL)
	lower := strings.ToLower(raw)
	switch {
	case raw == "":
		return nil, errors.New("state: empty redis URL")
	case strings.HasPrefix(lower, "redis+sentinel://"):
		o, err := parseSentinelURL(raw[len("redis+sentinel://"):])
		if err != nil {
			return nil, fmt.Errorf("state: redis+sentinel URL %s: %w", redact.URL(raw), err)
		}
		return redis.NewUniversalClient(o), nil
	case strings.Contains(raw, ","):
		o, err := parseClusterList(raw)
		if err != nil {
			return nil, fmt.Errorf("state: redis cluster URL %s: %w", redact.URL(raw), err)
		}
		return redis.NewUniversalClient(o), nil
	case strings.Contains(raw, "://"):
		o, err := parseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("state: redis URL %s: %w", redact.URL(raw), err)
		}
		return redis.NewClient(o), nil
	default:
		return redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{raw}}), nil
	}
}

func parseClusterList(raw string) (*redis.UniversalOptions, error) {
	o := &redis.UniversalOptions{IsClusterMode: true}
	for i, part := range strings.Split(raw, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "://") {
			o.Addrs = append(o.Addrs, part)
			continue
		}
		po, err := parseURL(part)
		if err != nil {
			return nil, fmt.Errorf("address %d: %w", i+1, err)
		}
		o.Addrs = append(o.Addrs, po.Addr)
		if i == 0 {
			o.Username, o.Password, o.TLSConfig = po.Username, po.Password, po.TLSConfig
		}
	}
	if len(o.Addrs) == 0 {
		return nil, errors.New("names no address")
	}
	return o, nil
}

func parseSentinelURL(rest string) (*redis.UniversalOptions, error) {
	o := &redis.UniversalOptions{}
	query := ""
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		rest, query = rest[:q], rest[q+1:]
	}
	slash := strings.IndexByte(rest, '/')
	if slash < 0 {
		return nil, errors.New("lacks /mastername")
	}
	hosts, path := rest[:slash], strings.Trim(rest[slash+1:], "/")
	if at := strings.LastIndexByte(hosts, '@'); at >= 0 {
		user, pass, hasPass := strings.Cut(hosts[:at], ":")
		var err error
		// Unescape errors quote the bad escape, part of the secret: not shown.
		if o.Username, err = url.PathUnescape(user); err != nil {
			return nil, errors.New("the user has an invalid %-escape")
		}
		if hasPass {
			if o.Password, err = url.PathUnescape(pass); err != nil {
				return nil, errors.New("the password has an invalid %-escape")
			}
		}
		hosts = hosts[at+1:]
	}
	for _, h := range strings.Split(hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			if !strings.Contains(h, ":") {
				h += ":26379"
			}
			o.Addrs = append(o.Addrs, h)
		}
	}
	if len(o.Addrs) == 0 {
		return nil, errors.New("names no sentinel")
	}
	master, db, hasDB := strings.Cut(path, "/")
	if master == "" {
		return nil, errors.New("lacks the master name")
	}
	o.MasterName = master
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, errors.New("the query has an invalid %-escape") // it may hold sentinel_password
	}
	if v := q.Get("db"); v != "" {
		db, hasDB = v, true
	}
	if hasDB && db != "" {
		if o.DB, err = strconv.Atoi(db); err != nil {
			return nil, fmt.Errorf("db %q is not a number", db)
		}
	}
	o.SentinelUsername = q.Get("sentinel_username")
	o.SentinelPassword = q.Get("sentinel_password")
	return o, nil
}

// parseURL is redis.ParseURL with errors that quote nothing secret: net/url's
// errors repeat the whole URL, and go-redis's may repeat parts of it.
func parseURL(raw string) (*redis.Options, error) {
	if _, err := url.Parse(raw); err != nil {
		return nil, fmt.Errorf("malformed: %s", redact.ParseError(err))
	}
	o, err := redis.ParseURL(raw)
	if err != nil {
		return nil, errors.New(redact.Scrub(err.Error(), raw))
	}
	return o, nil
}

// op is one command of a batch: a script call, or a plain command.
type op struct {
	script *script
	keys   []string // a script's KEYS
	args   []any
	plain  func(p redis.Cmdable) redis.Cmder
	// order names what the command reads or writes, for run's ordering: a
	// key, or a key and a member ("set\x00member") where commands on other
	// members of the key are independent of it. nil: the script's keys; a
	// plain command without order conflicts with every other command.
	order []string
	// shared are the names in order (or keys) the command only reads.
	shared []string
}

// deps is what o reads or writes (see op.order).
func (o *op) deps() []string {
	if o.order != nil {
		return o.order
	}
	return o.keys
}

// member names one member of a key, for op.order.
func memberOf(key, m string) string { return key + "\x00" + m }

// keyOfMember is the key a member name (memberOf) belongs to, and false for
// a name that is a whole key.
func keyOfMember(name string) (string, bool) {
	key, _, isMember := strings.Cut(name, "\x00")
	return key, isMember
}

// writes reports whether o writes key.
func (o *op) writes(key string) bool {
	for _, k := range o.shared {
		if k == key {
			return false
		}
	}
	return true
}

// run sends ops as pipelines (EVALSHA for scripts) and returns their
// commands, index-aligned. Any error of any command but NOSCRIPT fails the
// batch; redis.Nil replies are not errors.
//
// A script the server does not know yet (first use, restart, failover,
// SCRIPT FLUSH) fails with NOSCRIPT without running, and is sent again with
// EVAL. That retry must not overtake anything: when another client loads
// the script while our pipeline is being executed, a later command of the
// pipeline succeeds where an earlier one failed, and re-sending the earlier
// one after it would run two changes of one row, or two usage samples of
// one subscription, in the wrong order (the later one wins, the earlier is
// taken as late news and its email is lost). So ops are split into rounds
// (rounds) in which no two commands touch a key one of them writes; each
// round is one pipeline, NOSCRIPT retries included, before the next. A
// batch whose rows and subscriptions appear once each is one round trip;
// each repeat of a key within the batch adds at most one.
func (s *Store) run(ctx context.Context, ops []op) ([]redis.Cmder, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	round, n := rounds(ops)
	if n == 1 {
		return s.runRound(ctx, ops)
	}
	cmds := make([]redis.Cmder, len(ops))
	idx := make([]int, 0, len(ops))
	sub := make([]op, 0, len(ops))
	for r := range n {
		idx, sub = idx[:0], sub[:0]
		for i := range ops {
			if round[i] == r {
				idx = append(idx, i)
				sub = append(sub, ops[i])
			}
		}
		got, err := s.runRound(ctx, sub)
		if err != nil {
			return nil, err
		}
		for j, i := range idx {
			cmds[i] = got[j]
		}
	}
	return cmds, nil
}

// rounds assigns each op the earliest round after every earlier op it
// conflicts with (one writes what the other reads or writes, op.deps): a
// member of a key (memberOf) is part of that key, so it conflicts with
// the whole key and not with the key's other members. An op without deps
// conflicts with every op. Ops that conflict keep their order; a batch
// without scripts (no NOSCRIPT, nothing to re-send) is one round.
func rounds(ops []op) (round []int, n int) {
	round = make([]int, len(ops))
	scripts := false
	for i := range ops {
		if ops[i].script != nil {
			scripts = true
			break
		}
	}
	if !scripts || len(ops) == 1 {
		return round, 1
	}
	// Per name (a key, or a key's member): 1 + the last round writing it,
	// and 1 + the last round touching it. A member also conflicts with its
	// whole key, so each key keeps the same two of all its members.
	lastWrite := make(map[string]int, 2*len(ops))
	lastTouch := make(map[string]int, 2*len(ops))
	memberWrite := map[string]int{}
	memberTouch := map[string]int{}
	floor := 0 // the round after the last op without keys
	for i := range ops {
		o := &ops[i]
		deps := o.deps()
		r := floor
		if len(deps) == 0 {
			r = n
		}
		for _, k := range deps {
			w := o.writes(k)
			r = max(r, lastWrite[k])
			if w {
				r = max(r, lastTouch[k])
			}
			if key, isMember := keyOfMember(k); isMember {
				r = max(r, lastWrite[key]) // the whole key, before
				if w {
					r = max(r, lastTouch[key])
				}
			} else {
				r = max(r, memberWrite[k]) // any of its members, before
				if w {
					r = max(r, memberTouch[k])
				}
			}
		}
		round[i] = r
		n = max(n, r+1)
		if len(deps) == 0 {
			floor = r + 1
			continue
		}
		for _, k := range deps {
			w := o.writes(k)
			lastTouch[k] = max(lastTouch[k], r+1)
			if w {
				lastWrite[k] = r + 1
			}
			if key, isMember := keyOfMember(k); isMember {
				memberTouch[key] = max(memberTouch[key], r+1)
				if w {
					memberWrite[key] = max(memberWrite[key], r+1)
				}
			}
		}
	}
	return round, n
}

// runRound sends ops as one pipeline, then the scripts that failed with
// NOSCRIPT again with EVAL (the ops of a round are independent of each
// other, so the order of the retries does not matter).
func (s *Store) runRound(ctx context.Context, ops []op) ([]redis.Cmder, error) {
	cmds := make([]redis.Cmder, len(ops))
	// Coalesced: queued in order on the autopipeliner's one ordered stream,
	// each Err waiting until its command has run. Otherwise a pipeline of
	// the batch's own.
	var q redis.Cmdable
	var pipe redis.Pipeliner
	if s.ap != nil && len(ops) <= coalesceOps {
		q = s.ap
	} else {
		pipe = s.c.Pipeline()
		q = pipe
	}
	for i, o := range ops {
		if o.script != nil {
			cmds[i] = q.EvalSha(ctx, o.script.sha, o.keys, o.args...)
		} else {
			cmds[i] = o.plain(q)
		}
	}
	if pipe != nil {
		_, _ = pipe.Exec(ctx) // errors are per command, checked below
	} else {
		for _, c := range cmds {
			_ = c.Err() // waits; checked below
		}
	}
	var retry []int
	for i, cmd := range cmds {
		err := cmd.Err()
		switch {
		case err == nil || errors.Is(err, redis.Nil):
		case ops[i].script != nil && isNoScript(err):
			retry = append(retry, i)
		default:
			return nil, fmt.Errorf("state: redis %s: %w", cmd.Name(), err)
		}
	}
	if len(retry) == 0 {
		return cmds, nil
	}
	pipe = s.c.Pipeline()
	for _, i := range retry {
		o := ops[i]
		cmds[i] = pipe.Eval(ctx, o.script.src, o.keys, o.args...)
	}
	_, _ = pipe.Exec(ctx)
	for _, i := range retry {
		if err := cmds[i].Err(); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("state: redis script %s: %w", ops[i].script.name, err)
		}
	}
	return cmds, nil
}

// scriptReplies flattens the replies of calls that each answer for one item
// (perKeyScripts) or for many (a *_many.lua script: an array of per-item
// replies) into one reply per item, checking that there are want of them.
func (s *Store) scriptReplies(cmds []redis.Cmder, want int, what string) ([]any, error) {
	replies := make([]any, 0, want)
	for _, cmd := range cmds {
		if s.perKeyScripts() {
			replies = append(replies, cmd.(*redis.Cmd).Val())
			continue
		}
		vals, err := cmd.(*redis.Cmd).Slice()
		if err != nil {
			return nil, fmt.Errorf("state: %s: %w", what, err)
		}
		replies = append(replies, vals...)
	}
	if len(replies) != want {
		return nil, fmt.Errorf("state: %s returned %d results for %d", what, len(replies), want)
	}
	return replies, nil
}

func isNoScript(err error) bool {
	return errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT")
}

//go:embed scripts/*.lua
var scriptFS embed.FS

// script is one embedded Lua script, with scripts/common.lua prepended.
type script struct {
	name, src, sha string
}

func loadScript(name string) *script {
	common, err := scriptFS.ReadFile("scripts/common.lua")
	if err != nil {
		panic(err)
	}
	body, err := scriptFS.ReadFile("scripts/" + name + ".lua")
	if err != nil {
		panic(err)
	}
	src := string(common) + "\n" + string(body)
	return &script{name: name, src: src, sha: redis.NewScript(src).Hash()}
}

var (
	scriptApply     = loadScript("apply")
	scriptApplyMany = loadScript("apply_many")
	scriptTruncate  = loadScript("truncate")
	scriptTrim      = loadScript("trim")
	scriptPark      = loadScript("park")
	scriptParked    = loadScript("parked")
	scriptBands     = loadScript("bands")
	scriptBandsMany = loadScript("bands_many")
	scriptDue       = loadScript("due")
	scriptDueMany   = loadScript("due_many")
	scriptNextDue   = loadScript("nextdue")
	scriptAck       = loadScript("ack")
	scriptClaim     = loadScript("claim")
	scriptRelease   = loadScript("release")
)

// millis is a time as unix milliseconds, the unit of every stored time.
func millis(t time.Time) int64 { return t.UnixMilli() }

// fromMillis is the inverse of millis, in UTC.
func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// durMillis is d in whole milliseconds, at least 1.
func durMillis(d time.Duration) int64 {
	ms := d.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	return ms
}
