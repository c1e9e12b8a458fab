// Package processor is portalmail's engine: it turns decoded CDC changes
// (cdc.Change) into email jobs (schemas.EmailJob), generic over the catalog of
// email types (package catalog). It imports no Kafka, Redis or Mailgun code:
// state is reached through the State interface (implemented by package state),
// rendering through Renderer (implemented by package templates), and time is a
// parameter.
//
// # Model
//
// Engine.Apply takes a batch of changes and the current time. It applies the
// changes to state (compare-and-set by source position: applied, replay or
// stale), derives from each applied or replayed change the catalog's
// transitions (from the Debezium before image when there is one, else from the
// previous image kept in state), feeds usage samples through the usage bands,
// and (re)schedules the catalog's timers for the changed rows. Every email
// derived this way is an intent; intents are resolved against the rows in
// state (company, partner, ordering user, subscription), expanded into one job
// per distinct recipient, rendered, and filtered against the idempotency keys
// already emitted.
//
// Engine.Fire does the same for timers due at a given time: it leases them,
// fires the latest overdue timer of each series after re-checking it against
// the current row, and drops the rest.
//
// Both return an Output: the jobs, the dead letters, and the Commit to record
// with Engine.Commit once the jobs are committed downstream (emitted-key
// markers, acked timers, unparked intents). An aborted attempt simply runs
// again: it re-derives the same keys.
//
// # Missing references
//
// An intent whose company, partner or ordering user is not in state yet is
// parked on the missing row and retried when that row arrives. A parked intent
// whose deadline (Config.ParkFor after it was first parked) passes is
// dead-lettered with the reason.
//
// # Idempotency keys
//
// A job's key is "<type>|<table>|<id>|<cause>|<recipient hash>", where the
// cause is the source position of the change (transitions, thresholds) or the
// due time (timers). Keys are stable across redeliveries, replays and restarts.
package processor
