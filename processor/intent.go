package processor

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/schemas"
	"github.com/portalmail/portalmail/schemas/cdc"
)

// intent is one email decided but not yet resolved to recipients. It is
// serialised (JSON) when parked.
type intent struct {
	// Type is the email type; "" for a usage sample still to be banded.
	Type  catalog.TypeID `json:"type,omitempty"`
	Table string         `json:"table"`
	ID    string         `json:"id"`
	// Cause is the part of the idempotency key naming the cause: "@<position>"
	// for changes and samples, "due:<RFC 3339>" for timers.
	Cause    string        `json:"cause"`
	Position cdc.Position  `json:"position"`
	Next     cdc.Row       `json:"next"`
	Prev     cdc.Row       `json:"prev,omitempty"`
	Days     int           `json:"days,omitempty"`
	Percent  int           `json:"percent,omitempty"`
	Src      schemas.Cause `json:"src"`
	// Set and Deadline place the parked intent's expiry; Deadline is set when
	// it is first parked and kept on re-parking.
	Set      string    `json:"set"`
	Deadline time.Time `json:"deadline,omitzero"`

	from *Parked // the park this intent was retried from, if any
	// at is the clock of the change the intent came from when the batch
	// has one per change (Engine.ApplyEach); zero means the batch's now.
	at time.Time
}

func intentFromChange(t *entry, ch cdc.Change, prev, next cdc.Row) intent {
	var cause [64]byte
	return intent{
		Type: t.ID, Table: ch.Table, ID: ch.ID,
		Cause: string(ch.Position.Append(append(cause[:0], '@'))), Position: ch.Position,
		Next: next, Prev: prev,
		Src: schemas.Cause{Topic: ch.Cause.Topic, Partition: ch.Cause.Partition, Offset: ch.Cause.Offset,
			Op: string(ch.Op), SourceTime: ch.SourceTime, Table: ch.Table, EntityID: ch.ID},
		Set: TimerSet(ch.Cause.Topic, ch.Cause.Partition),
	}
}

// base is the idempotency key of the intent, before the recipient.
func (in intent) base() string {
	typ := string(in.Type)
	if typ == "" {
		typ = "sample"
	}
	return typ + "|" + in.Table + "|" + in.ID + "|" + in.Cause
}

// jobKey is the idempotency key of one job: the intent's base and a hash of
// the recipient's address (so keys can be logged without addresses).
func jobKey(base, address string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(address)))
	return base + "|" + hex.EncodeToString(sum[:8])
}

func (in intent) dlqCause() cdc.Cause {
	return cdc.Cause{Topic: in.Src.Topic, Partition: in.Src.Partition, Offset: in.Src.Offset}
}

func (in intent) String() string { return fmt.Sprintf("%s %s/%s", in.base(), in.Table, in.ID) }
