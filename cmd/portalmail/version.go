package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
)

// buildVersion describes the binary from its build info: the module version
// ("(devel)" for a build from a checkout, the tag for `go install …@v1.2.3`),
// the VCS revision and time, and whether the tree had local changes. A build
// without VCS stamping (-buildvcs=false, or a source tree without .git such
// as the Docker build context) has no revision: it says so.
func buildVersion(info *debug.BuildInfo, ok bool) string {
	if !ok || info == nil {
		return "portalmail (no build info)"
	}
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var rev, at string
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	vcs := "revision unknown (built without VCS information)"
	if rev != "" {
		vcs = "revision " + rev
		if at != "" {
			vcs += " of " + at
		}
		if modified {
			vcs += ", with local changes"
		}
	}
	return fmt.Sprintf("portalmail %s, %s, %s", version, vcs, info.GoVersion)
}

// runVersion is `portalmail version`.
func runVersion(_ context.Context, env *environ, args []string) error {
	f := newFlags("version", "version", env)
	if err := f.parse(args); err != nil {
		return err
	}
	info, ok := debug.ReadBuildInfo()
	_, err := io.WriteString(env.stdout, buildVersion(info, ok)+"\n")
	return err
}
