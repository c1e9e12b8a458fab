package state

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portalmail/portalmail/processor"
	"github.com/portalmail/portalmail/schemas/cdc"
)

// The methods here read state for operators (`portalmail explain`): they scan
// the keyspace, so they are for occasional use, not for the hot path.

// scan returns every key matching pattern (on every master of a Cluster).
func (s *Store) scan(ctx context.Context, pattern string) ([]string, error) {
	var (
		mu   sync.Mutex // ForEachMaster calls each on every master at once
		keys []string
	)
	each := func(ctx context.Context, c *redis.Client) error {
		var found []string
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			found = append(found, iter.Val())
		}
		mu.Lock()
		keys = append(keys, found...)
		mu.Unlock()
		return iter.Err()
	}
	var err error
	switch c := s.c.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, each)
	case *redis.Client:
		err = each(ctx, c)
	default:
		iter := s.c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		err = iter.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("state: scan %s: %w", pattern, err)
	}
	return keys, nil
}

var globChars = strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`, "]", `\]`)

// TableRows returns the current image of every row of table whose column
// equals value ("" matches every row).
func (s *Store) TableRows(ctx context.Context, table, column, value string) ([]cdc.Row, error) {
	prefix := s.prefix + ":{r:" + escTable.Replace(table) + ":"
	keys, err := s.scan(ctx, globChars.Replace(prefix)+"*}")
	if err != nil {
		return nil, err
	}
	var refs []processor.RowRef
	for _, k := range keys {
		id, err := url.PathUnescape(strings.TrimSuffix(strings.TrimPrefix(k, prefix), "}"))
		if err == nil {
			refs = append(refs, processor.RowRef{Table: table, ID: id})
		}
	}
	rows, err := s.Rows(ctx, refs)
	if err != nil {
		return nil, err
	}
	var out []cdc.Row
	for _, r := range rows {
		if r != nil && (column == "" || r.Str(column) == value) {
			out = append(out, r)
		}
	}
	return out, nil
}

// AllTimers returns every timer of every set, in due order per set.
func (s *Store) AllTimers(ctx context.Context) ([]processor.TimerRef, error) {
	prefix := s.prefix + ":{t:"
	keys, err := s.scan(ctx, globChars.Replace(prefix)+"*}")
	if err != nil {
		return nil, err
	}
	var out []processor.TimerRef
	for _, k := range keys {
		set, err := url.PathUnescape(strings.TrimSuffix(strings.TrimPrefix(k, prefix), "}"))
		if err != nil {
			continue
		}
		zs, err := s.c.ZRangeWithScores(ctx, k, 0, -1).Result()
		if err != nil {
			return nil, fmt.Errorf("state: timers of %s: %w", set, err)
		}
		for _, z := range zs {
			out = append(out, processor.TimerRef{Set: set, Member: z.Member.(string), Due: fromMillis(int64(z.Score))})
		}
	}
	return out, nil
}

// Band is the state of one usage band.
type Band struct {
	Found                 bool
	UsageArmed, OverArmed bool
	LatestPosition        string
}

// BandOf returns the usage band of a subscription.
func (s *Store) BandOf(ctx context.Context, key string) (Band, error) {
	v, err := s.c.HMGet(ctx, s.bandKey(key), "u", "o", "p").Result()
	if err != nil {
		return Band{}, fmt.Errorf("state: band %s: %w", key, err)
	}
	b := Band{UsageArmed: v[0] != "0", OverArmed: v[1] != "0"}
	b.LatestPosition, b.Found = v[2].(string)
	return b, nil
}

// ParkedOn returns the intents parked waiting for a row.
func (s *Store) ParkedOn(ctx context.Context, table, id string) (map[string]time.Time, error) {
	m, err := s.c.HGetAll(ctx, s.parkedKey(table, id)).Result()
	if err != nil {
		return nil, fmt.Errorf("state: parked on %s/%s: %w", table, id, err)
	}
	out := map[string]time.Time{}
	for k, v := range m {
		out[k] = decodePark(processor.RowRef{Table: table, ID: id}, k, v).Deadline
	}
	return out, nil
}

// Positions returns, per ref, the source positions its history holds, newest
// first: the first is the row's current image, the others are changes not
// yet known to be committed (replayable). Empty for an absent row.
func (s *Store) Positions(ctx context.Context, refs []processor.RowRef) ([][]string, error) {
	ops := make([]op, len(refs))
	for i, ref := range refs {
		key := s.rowKey(ref.Table, ref.ID)
		ops[i] = op{plain: func(p redis.Cmdable) redis.Cmder { return p.LIndex(ctx, key, -1) }}
	}
	cmds, err := s.run(ctx, ops)
	if err != nil {
		return nil, err
	}
	out := make([][]string, len(refs))
	for i, cmd := range cmds {
		if v, err := cmd.(*redis.StringCmd).Result(); err == nil {
			out[i] = strings.Fields(v)
		}
	}
	return out, nil
}

// Truncates returns the truncate position of every truncated table.
func (s *Store) Truncates(ctx context.Context) (map[string]string, error) {
	return s.truncPositions(ctx)
}
