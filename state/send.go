package state

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClaimStatus is the outcome of ClaimSend.
type ClaimStatus int

// Claim outcomes.
const (
	// ClaimAcquired: the caller holds the key (newly, or again as the same
	// owner, with the lease refreshed) and may send.
	ClaimAcquired ClaimStatus = iota + 1
	// ClaimAlreadySent: the key was marked sent (or failed permanently): do
	// not send; report a suppressed duplicate.
	ClaimAlreadySent
	// ClaimInFlight: another owner holds an unexpired claim: do not send now;
	// retry later (the claim lapses with its lease if that owner died).
	ClaimInFlight
)

// String returns "acquired", "already_sent", "in_flight" or "unknown", for
// logs and metric labels.
func (c ClaimStatus) String() string {
	switch c {
	case ClaimAcquired:
		return "acquired"
	case ClaimAlreadySent:
		return "already_sent"
	case ClaimInFlight:
		return "in_flight"
	}
	return "unknown"
}

// ClaimSend claims idempotency key for sending by owner (a unique id of the
// sending instance or attempt), atomically (one script, one round trip):
// a free key is set to "sending:<owner>" for lease and ClaimAcquired is
// returned; a key marked sent gives ClaimAlreadySent; a key already claimed
// by owner is re-acquired with its lease refreshed; one claimed by another
// owner gives ClaimInFlight. Safe for concurrent use across processes:
// exactly one of several concurrent claimants acquires a free key. The lease
// should outlast the provider call: a claim that lapses mid-call lets
// another owner send again. On error nothing is known; the caller must not
// send.
func (s *Store) ClaimSend(ctx context.Context, key, owner string, lease time.Duration) (ClaimStatus, error) {
	cmds, err := s.run(ctx, []op{{
		script: scriptClaim,
		keys:   []string{s.claimKey(key)},
		args:   []any{"sending:" + owner, strconv.FormatInt(durMillis(lease), 10)},
	}})
	if err != nil {
		return 0, err
	}
	return claimStatus(key, cmds[0])
}

// MarkSent records key as delivered with the provider's message id
// ("sent:<providerID>", kept SentTTL), whoever holds the claim: from then on
// ClaimSend returns ClaimAlreadySent. Also used for permanent failures, with
// providerID "failed", so they are not retried. Idempotent; one round trip.
// On error the mark may or may not be written; retry.
func (s *Store) MarkSent(ctx context.Context, key, providerID string) error {
	if err := s.c.Set(ctx, s.claimKey(key), "sent:"+providerID, s.opts.SentTTL).Err(); err != nil {
		return fmt.Errorf("state: mark sent %s: %w", key, err)
	}
	return nil
}

// MarkSentAndClaim is MarkSent(sentKey, providerID) followed by
// ClaimSend(key, owner, lease), in one round trip: a sender that has just
// sent one email marks it as it claims its next. The mark is written first
// whatever the claim's outcome. On error neither is known to be written;
// mark again (MarkSent) before anything else.
func (s *Store) MarkSentAndClaim(ctx context.Context, sentKey, providerID, key, owner string, lease time.Duration) (ClaimStatus, error) {
	mark, claim := s.claimKey(sentKey), s.claimKey(key)
	// One key for both: run orders them, the mark first.
	cmds, err := s.run(ctx, []op{{
		plain: func(p redis.Cmdable) redis.Cmder { return p.Set(ctx, mark, "sent:"+providerID, s.opts.SentTTL) },
		order: []string{mark},
	}, {
		script: scriptClaim,
		keys:   []string{claim},
		args:   []any{"sending:" + owner, strconv.FormatInt(durMillis(lease), 10)},
	}})
	if err != nil {
		return 0, fmt.Errorf("state: mark sent %s and claim %s: %w", sentKey, key, err)
	}
	return claimStatus(key, cmds[1])
}

// claimStatus reads a claim script's reply.
func claimStatus(key string, cmd redis.Cmder) (ClaimStatus, error) {
	code, err := cmd.(*redis.Cmd).Int64()
	if err != nil {
		return 0, fmt.Errorf("state: claim %s: %w", key, err)
	}
	st := ClaimStatus(code)
	if st < ClaimAcquired || st > ClaimInFlight {
		return 0, fmt.Errorf("state: claim %s: unexpected script result %d", key, code)
	}
	return st, nil
}

// ReleaseSend gives up owner's claim on key (after a retryable failure), so
// another attempt may claim it at once: the key is deleted only if it still
// reads "sending:<owner>" (one script, one round trip); a key marked sent or
// claimed by another owner is left alone. Idempotent.
func (s *Store) ReleaseSend(ctx context.Context, key, owner string) error {
	_, err := s.run(ctx, []op{{
		script: scriptRelease,
		keys:   []string{s.claimKey(key)},
		args:   []any{"sending:" + owner},
	}})
	return err
}
