package stream

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/portalmail/portalmail/schemas/cdc"
	"github.com/twmb/franz-go/pkg/sr"
)

// RegistrySchemas resolves Confluent schema ids through a schema registry; it
// is the decoder's cdc.SchemaSource in production. The decoder caches codecs,
// so each id is looked up once.
type RegistrySchemas struct{ Client *sr.Client }

// SchemaByID returns the schema text of id. The registry's answer that the
// id does not exist (HTTP 404, error code 40403) wraps cdc.ErrSchemaNotFound;
// every other failure is an outage the decoder reports as retryable.
func (r RegistrySchemas) SchemaByID(ctx context.Context, id int) (string, error) {
	s, err := r.Client.SchemaByID(ctx, id)
	if err != nil {
		var re *sr.ResponseError
		if errors.As(err, &re) && (re.StatusCode == http.StatusNotFound || re.ErrorCode == sr.ErrSchemaNotFound.Code) {
			return "", fmt.Errorf("%w: %w", cdc.ErrSchemaNotFound, err)
		}
		return "", err
	}
	return s.Schema, nil
}
