package simulate

import (
	"fmt"

	"github.com/portalmail/portalmail/schemas/cdc"
)

// AppendJSON appends the email's output line, without its newline: the bytes
// encoding/json's Encoder writes for it (HTML characters escaped), without
// its reflection. A time that RFC 3339 cannot hold is an error, as there.
func (e Email) AppendJSON(dst []byte) ([]byte, error) {
	dst = append(dst, `{"key":`...)
	dst = cdc.AppendJSONStringHTML(dst, e.Key)
	dst = append(dst, `,"type":`...)
	dst = cdc.AppendJSONStringHTML(dst, e.Type)
	dst = append(dst, `,"to":`...)
	dst = cdc.AppendJSONStringHTML(dst, e.To)
	if e.Name != "" {
		dst = append(dst, `,"name":`...)
		dst = cdc.AppendJSONStringHTML(dst, e.Name)
	}
	dst = append(dst, `,"role":`...)
	dst = cdc.AppendJSONStringHTML(dst, e.Role)
	dst = append(dst, `,"subject":`...)
	dst = cdc.AppendJSONStringHTML(dst, e.Subject)
	dst = append(dst, `,"company_id":`...)
	dst = cdc.AppendJSONStringHTML(dst, e.CompanyID)
	dst = append(dst, `,"at":"`...)
	dst, err := e.At.AppendText(dst)
	if err != nil {
		return nil, fmt.Errorf("email %s: %w", e.Key, err)
	}
	return append(dst, `"}`...), nil
}
