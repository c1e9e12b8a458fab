package state

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/portalmail/portalmail/processor"
)

// Key builders: the layout is documented in doc.go.

var (
	escComponent = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D")
	escTable     = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D", ":", "%3A")
)

func (s *Store) rowKey(table, id string) string {
	return s.prefix + ":{r:" + escTable.Replace(table) + ":" + escComponent.Replace(id) + "}"
}

func (s *Store) parkedKey(table, id string) string { return s.rowKey(table, id) + ":parked" }

func (s *Store) bandKey(key string) string {
	return s.prefix + ":{b:" + escComponent.Replace(key) + "}"
}

func (s *Store) timerKey(set string) string {
	return s.prefix + ":{t:" + escComponent.Replace(set) + "}"
}

func (s *Store) leaseKey(set string) string { return s.timerKey(set) + ":lease" }

func (s *Store) emittedKey(key string) string {
	return s.prefix + ":{k:" + escComponent.Replace(key) + "}"
}

func (s *Store) claimKey(key string) string {
	return s.prefix + ":{s:" + escComponent.Replace(key) + "}"
}

// ParkMember is the timer-set member that carries the expiry of parked intent
// p: the JSON array ["p", p.On.Table, p.On.ID, p.Key] (HTML characters are not
// escaped). Write.Park adds it to p.Set's timers at p.Deadline and
// Commit.Unpark removes it. The engine recognises a member as a park expiry
// when it decodes as a JSON array whose first element is "p". Pure function,
// deterministic, safe for concurrent use.
func ParkMember(p processor.Parked) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode([]string{"p", p.On.Table, p.On.ID, p.Key}) // strings always encode
	return strings.TrimSuffix(b.String(), "\n")
}
