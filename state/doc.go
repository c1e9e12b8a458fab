// Package state is portalmail's Redis store: it implements processor.State
// (row history, parked intents, usage bands, timers, emitted-key markers) and
// the sender's dedup claims (ClaimSend, MarkSent, ReleaseSend).
//
// It works against standalone Redis, Sentinel and Cluster through
// redis.UniversalClient (see Open). On Cluster every script call touches the
// keys of one hash tag, hence one slot; on standalone Redis and Sentinel,
// apply and trim scripts take a chunk of rows per call. Batches are pipelines
// (one round trip per Redis node), so every method costs a constant number of
// round trips whatever the batch size. The Lua scripts live in scripts/*.lua and are embedded.
//
// # Key layout
//
// This is the one place the layout is written down. Every key starts with
// Options.Prefix ("pm" by default); the part in braces is the hash tag. In the
// components, '%', '{' and '}' are percent-encoded (and ':' too in a table
// name), so a tag is always well-formed and keys cannot collide.
//
//	pm:{r:<table>:<id>}          LIST   row history: its entries newest first, then (last
//	                                    element) the index of their positions, newest first,
//	                                    space-separated. Entry:
//	                                    "<position>|<set before>|<set>|<json>" (first-set
//	                                    columns as comma lists; json "null" for a delete).
//	                                    Every entry not yet trimmed by Commit.Rows is
//	                                    replayable; the oldest kept is the last committed
//	                                    image (older ones until the trim, which
//	                                    Options.TrimDelay may defer to the row's next
//	                                    change). Deleted rows expire after DeletedRetention,
//	                                    rows of service.public.cvi_usage after UsageTTL.
//	pm:{r:<table>:<id>}:parked   HASH   intent key -> "<deadline ms>|<len(set)>|<set><data>":
//	                                    intents parked until the row arrives (same tag as
//	                                    the row, so the apply script returns them)
//	pm:{trunc}                   HASH   table -> position of its newest TRUNCATE: rows of
//	                                    the table stored at older positions read as absent
//	pm:{b:<key>}                 HASH   usage band of a subscription: u (usage armed),
//	                                    o (over armed), p (latest position evaluated),
//	                                    h (recent "position=result,..." for replays, newest first)
//	pm:{t:<set>}                 ZSET   timers of one set (source partition): member ->
//	                                    due time, unix milliseconds. Park expiries are
//	                                    members too: ParkMember's ["p",table,id,intentKey].
//	pm:{t:<set>}:lease           HASH   member -> lease expiry (unix ms) of fired timers
//	pm:{k:<idempotency key>}     STRING "1": the key's job was committed (EmittedTTL)
//	pm:{w:<webhook token>}       STRING <claim owner>: a Mailgun webhook token claimed by one
//	                                    request (replay guard, 2 × max-age + 1 min); deleted
//	                                    again only when recording its event failed retryably
//	pm:{s:<idempotency key>}     STRING "sending:<owner>" (claimed, with a lease) or
//	                                    "sent:<provider id>" (delivered or failed
//	                                    permanently, SentTTL)
//
// Positions (cdc.Position: "lsn:<n>", "us:<n>~<digest>", "ms:<n>~<digest>")
// hold int64 numbers beyond what Lua's doubles hold exactly: they travel as
// text and their numbers are compared as decimal strings
// (scripts/common.lua); positions of different kinds are never compared.
//
// Times stored as scores or lease values are unix milliseconds; times
// returned are in UTC, truncated to the millisecond.
package state
