package simulate

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// encodingJSON is the line encoding/json's Encoder writes for e, without
// its newline.
func encodingJSON(t *testing.T, e Email) ([]byte, error) {
	t.Helper()
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(e); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func TestEmailAppendJSONMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2027, 3, 1, 9, 0, 0, 120000000, time.UTC)
	for _, e := range []Email{
		{Key: "k1", Type: "trial.new", To: "a@x.example", Name: "Ann", Role: "customer", Subject: "Welcome", CompanyID: "co-1", At: at},
		{Key: "k2", Type: "t", To: "b@y.example", Role: "partner", Subject: `<b>"Q" & A</b> \ é ✓ ` + "\u2028\u2029\x00\x01\b\f\n\r\t\x7f", At: at.Add(time.Nanosecond)},
		{Key: string([]byte{0xff, 'a', 0xc3}), Subject: "\xe2\x80", At: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)},
		{At: time.Date(2027, 3, 1, 9, 0, 0, 0, time.FixedZone("x", 3600))},
	} {
		want, err := encodingJSON(t, e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.AppendJSON([]byte("pre"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, append([]byte("pre"), want...)) {
			t.Errorf("AppendJSON\n%s\nencoding/json\npre%s", got, want)
		}
	}
	if _, err := (Email{Key: "k", At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}).AppendJSON(nil); err == nil {
		t.Error("a year past 9999 was encoded")
	}
}

func FuzzEmailAppendJSON(f *testing.F) {
	f.Add("k", "<&>\u2028", "Ann \"A\"", "\xff\x00", int64(1772360130123))
	f.Fuzz(func(t *testing.T, key, subject, name, to string, ms int64) {
		e := Email{Key: key, Type: "t", To: to, Name: name, Role: "customer", Subject: subject, CompanyID: key, At: time.UnixMilli(ms % 253402300800000).UTC()}
		want, wantErr := encodingJSON(t, e)
		got, err := e.AppendJSON(nil)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("error %v, encoding/json's %v", err, wantErr)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON\n%s\nencoding/json\n%s", got, want)
		}
	})
}
