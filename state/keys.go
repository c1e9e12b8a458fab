package state

import (
	"strings"
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

// truncKey is the HASH of truncate positions: table -> position.
func (s *Store) truncKey() string { return s.prefix + ":{trunc}" }

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
