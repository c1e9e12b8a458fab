package processor_test

import "github.com/portalmail/portalmail/schemas/cdc"

func newDecoder() *cdc.Decoder { return cdc.NewDecoder(cdc.DecoderConfig{}) }
