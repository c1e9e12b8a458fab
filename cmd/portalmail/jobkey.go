package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// jobKey reads the idempotency key of an Avro job record in the Confluent
// wire format, whatever schema version wrote it (resolved by the registry).
func jobKey(ctx context.Context, reg *sr.Client, value []byte) (string, error) {
	if len(value) < 5 || value[0] != 0 {
		return "", errors.New("not a Confluent-framed Avro record")
	}
	sch, err := reg.SchemaByID(ctx, int(binary.BigEndian.Uint32(value[1:5])))
	if err != nil {
		return "", err
	}
	codec, err := goavro.NewCodec(sch.Schema)
	if err != nil {
		return "", err
	}
	native, _, err := codec.NativeFromBinary(value[5:])
	if err != nil {
		return "", err
	}
	m, _ := native.(map[string]any)
	key, _ := m["key"].(string)
	if key == "" {
		return "", fmt.Errorf("job without a key")
	}
	return key, nil
}
