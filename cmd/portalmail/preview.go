package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/portalmail/portalmail/processor/catalog"
	"github.com/portalmail/portalmail/processor/preview"
	"github.com/portalmail/portalmail/templates"
)

func runPreview(ctx context.Context, env *environ, args []string) error {
	var listen string
	f := newFlags("preview", "preview [--listen ADDR]", env)
	f.String(&listen, "listen", "127.0.0.1:8025", "address of the preview page")
	if err := f.parse(args); err != nil {
		return err
	}
	tmpl, err := templates.Parse()
	if err != nil {
		return err
	}
	h, err := preview.New(catalog.Default(), tmpl)
	if err != nil {
		return err
	}
	// Bind first: the URL is announced only once it answers.
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	srv := newServer(listen, h, opsLimits)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(env.stdout, "preview of every email type at http://%s/ (?brand=%s)\n", ln.Addr(), strings.Join(preview.BrandNames(), "|"))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
