package main

import (
	"context"
	"fmt"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// avroReader decodes Confluent-framed Avro records with the schema the
// registry holds for their id, whatever version wrote them. Codecs are cached
// per id. Not safe for concurrent use.
type avroReader struct {
	reg    *sr.Client
	codecs map[int]*goavro.Codec
}

func newAvroReader(reg *sr.Client) *avroReader {
	return &avroReader{reg: reg, codecs: map[int]*goavro.Codec{}}
}

// record decodes value into its native record.
func (a *avroReader) record(ctx context.Context, value []byte) (map[string]any, error) {
	id, body, err := new(sr.ConfluentHeader).DecodeID(value)
	if err != nil {
		return nil, err
	}
	codec := a.codecs[id]
	if codec == nil {
		s, err := a.reg.SchemaByID(ctx, id)
		if err != nil {
			return nil, err
		}
		if codec, err = goavro.NewCodec(s.Schema); err != nil {
			return nil, err
		}
		a.codecs[id] = codec
	}
	native, _, err := codec.NativeFromBinary(body)
	if err != nil {
		return nil, err
	}
	m, ok := native.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("schema %d: not a record", id)
	}
	return m, nil
}

// jobKey reads the idempotency key of a job record.
func (a *avroReader) jobKey(ctx context.Context, value []byte) (string, error) {
	m, err := a.record(ctx, value)
	if err != nil {
		return "", err
	}
	key, _ := m["key"].(string)
	if key == "" {
		return "", fmt.Errorf("job without a key")
	}
	return key, nil
}
