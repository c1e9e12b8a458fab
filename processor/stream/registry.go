package stream

import (
	"context"

	"github.com/twmb/franz-go/pkg/sr"
)

// RegistrySchemas resolves Confluent schema ids through a schema registry; it
// is the decoder's cdc.SchemaSource in production. The decoder caches codecs,
// so each id is looked up once.
type RegistrySchemas struct{ Client *sr.Client }

// SchemaByID returns the schema text of id.
func (r RegistrySchemas) SchemaByID(ctx context.Context, id int) (string, error) {
	s, err := r.Client.SchemaByID(ctx, id)
	if err != nil {
		return "", err
	}
	return s.Schema, nil
}
