package main

import (
	"context"

	"github.com/portalmail/portalmail/processor/catalog"
)

func runCatalog(_ context.Context, env *environ, args []string) error {
	f := newFlags("catalog", "catalog", env)
	if err := f.parse(args); err != nil {
		return err
	}
	return catalog.WriteTable(env.stdout, catalog.Default())
}
