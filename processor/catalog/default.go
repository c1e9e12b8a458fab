package catalog

// Default returns the catalog of the spec: 47 email types in the spec's order
// (trials, orders and cancellations, renewals, interoperability, OTJ,
// portal/analytics accounts, Pexip Service, classic products, branding).
// It returns a fresh slice each call.
func Default() Catalog {
	var c Catalog
	for _, part := range [][]EmailType{trials, orders, renewals, interop, otj, accounts, service, classic, branding} {
		c = append(c, part...)
	}
	return c
}
