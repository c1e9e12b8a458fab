package schemas

import "encoding/binary"

// appendJobBinary appends j as Avro binary in EmailJob's schema
// (email_job.avsc), field by field, without goavro's generic maps: the
// process stage encodes one job per email, and goavro's map-of-any path cost
// as much as everything else it does for a job. TestJobBinaryMatchesGoavro
// holds the bytes equal to goavro's for the same job; a schema change
// must change both (the test fails until it does).
func appendJobBinary(dst []byte, j *EmailJob) []byte {
	dst = avroString(dst, j.Key)
	dst = avroString(dst, j.Type)
	dst = avroString(dst, j.Section)
	dst = avroOptString(dst, j.CompanyID)
	dst = avroString(dst, j.To.Address)
	dst = avroString(dst, j.To.Name)
	dst = avroString(dst, j.To.Role)
	dst = avroString(dst, j.From)
	dst = avroOptString(dst, j.ReplyTo)
	dst = avroString(dst, j.Subject)
	dst = avroOptString(dst, j.HTML)
	dst = avroOptString(dst, j.Text)
	if len(j.Tags) > 0 {
		dst = binary.AppendVarint(dst, int64(len(j.Tags)))
		for _, t := range j.Tags {
			dst = avroString(dst, t)
		}
	}
	dst = binary.AppendVarint(dst, 0) // end of the tags array
	dst = avroString(dst, j.Cause.Topic)
	dst = binary.AppendVarint(dst, int64(j.Cause.Partition))
	dst = binary.AppendVarint(dst, j.Cause.Offset)
	dst = avroString(dst, j.Cause.Op)
	dst = binary.AppendVarint(dst, millis(j.Cause.SourceTime))
	dst = avroString(dst, j.Cause.Table)
	dst = avroString(dst, j.Cause.EntityID)
	dst = binary.AppendVarint(dst, millis(j.CreatedAt))
	return avroOptString(dst, j.Data)
}

// avroString appends s as an Avro string: its zig-zag varint length, then
// its bytes (binary.AppendVarint is Avro's zig-zag encoding).
func avroString(dst []byte, s string) []byte {
	dst = binary.AppendVarint(dst, int64(len(s)))
	return append(dst, s...)
}

// avroOptString appends s as the union ["null", "string"]: "" is null
// (branch 0), anything else branch 1 and the string.
func avroOptString(dst []byte, s string) []byte {
	if s == "" {
		return binary.AppendVarint(dst, 0)
	}
	return avroString(binary.AppendVarint(dst, 1), s)
}

// jobBinarySize is at least len(appendJobBinary(nil, j)): each string's
// length and bytes, each number at its longest varint.
func jobBinarySize(j *EmailJob) int {
	n := 0
	for _, s := range [...]string{j.Key, j.Type, j.Section, j.CompanyID, j.To.Address, j.To.Name, j.To.Role,
		j.From, j.ReplyTo, j.Subject, j.HTML, j.Text, j.Cause.Topic, j.Cause.Op, j.Cause.Table, j.Cause.EntityID, j.Data} {
		n += 1 + varintSize(len(s)) + len(s) // 1: an optional string's union branch
	}
	for _, t := range j.Tags {
		n += varintSize(len(t)) + len(t)
	}
	return n + 2*binary.MaxVarintLen64 + 4*binary.MaxVarintLen64 // the tags' count and end; partition, offset, two times
}

// varintSize is the length of n as a zig-zag varint.
func varintSize(n int) int {
	var b [binary.MaxVarintLen64]byte
	return len(binary.AppendVarint(b[:0], int64(n)))
}
