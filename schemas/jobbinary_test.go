package schemas

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestJobBinaryMatchesGoavro: the hand-written EmailJob encoder writes the
// very bytes goavro writes from the schema, for the sample, for edge cases
// (empty optionals, no tags, timers' offset -1, times before 1970, long and
// non-ASCII text) and for 2,000 random jobs; and goavro reads them back.
// jobBinarySize bounds each encoding.
func TestJobBinaryMatchesGoavro(t *testing.T) {
	c := mustCodec(JobCodec())
	goavroBytes := func(j EmailJob) []byte {
		native, err := jobToNative(&j)
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.avro.BinaryFromNative(nil, native)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	timer := sampleJob()
	timer.CompanyID, timer.ReplyTo, timer.HTML, timer.Text, timer.Tags = "", "", "", "", nil
	timer.Cause.Offset, timer.Cause.Partition, timer.Cause.Op = -1, -1, "timer"
	timer.Data = `{"template":"x","days":3}`
	old := sampleJob()
	old.Cause.SourceTime, old.CreatedAt = time.Date(1901, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}
	big := sampleJob()
	big.Data, big.Subject = strings.Repeat("ø€𝄞\x00", 5000), strings.Repeat("s", 300)
	big.Tags = []string{"a", "", strings.Repeat("t", 70)}
	cases := map[string]EmailJob{"sample": sampleJob(), "timer": timer, "old times": old, "big": big, "zero": {}}
	rng := rand.New(rand.NewPCG(1, 2))
	str := func() string {
		if rng.IntN(4) == 0 {
			return ""
		}
		b := make([]byte, rng.IntN(200))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return string(b)
	}
	for i := range 2000 {
		j := EmailJob{Key: str(), Type: str(), Section: str(), CompanyID: str(),
			To: Recipient{Address: str(), Name: str(), Role: str()}, From: str(), ReplyTo: str(), Subject: str(),
			HTML: str(), Text: str(), Data: str(),
			Cause: Cause{Topic: str(), Partition: rng.Int32() - rng.Int32(), Offset: rng.Int64() - rng.Int64(), Op: str(),
				SourceTime: time.UnixMilli(rng.Int64N(1<<45) - 1<<44).UTC(), Table: str(), EntityID: str()},
			CreatedAt: time.UnixMilli(rng.Int64N(1 << 44)).UTC()}
		for range rng.IntN(4) {
			j.Tags = append(j.Tags, str())
		}
		cases["random "+string(rune('A'+i%26))+string(rune('0'+i/26%10))+string(rune(i))] = j
	}
	for name, j := range cases {
		got, want := appendJobBinary(nil, &j), goavroBytes(j)
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: hand-written %d bytes differ from goavro's %d", name, len(got), len(want))
		}
		if _, err := c.Decode(got); err != nil {
			t.Fatalf("%s: goavro cannot read it: %v", name, err)
		}
		if n := jobBinarySize(&j); n < len(got) {
			t.Fatalf("%s: jobBinarySize %d, encoded %d bytes", name, n, len(got))
		}
	}
	enc, err := c.Encode(sampleJob())
	if err != nil || !bytes.Equal(enc, goavroBytes(sampleJob())) {
		t.Fatalf("the codec does not use the same bytes: %v", err)
	}
}
