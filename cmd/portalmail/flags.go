package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// flags wraps a FlagSet whose every flag defaults to an environment variable
// PORTALMAIL_<NAME>. Malformed environment values are collected as errors.
type flags struct {
	*flag.FlagSet
	synopsis string
	getenv   func(string) string
	stderr   io.Writer
	errs     []error
	// files load values from --*-file flags once the flags are parsed.
	files []func() error
}

// newFlags returns the flags of one command. The FlagSet itself prints
// nothing: parse prints the usage (on -h, or before a flag error, which the
// caller prints last).
func newFlags(name, synopsis string, env *environ) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flags{FlagSet: fs, synopsis: synopsis, getenv: env.getenv, stderr: env.stderr}
}

// usage prints the synopsis and every flag with its environment variable.
func (f *flags) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: portalmail %s\n\n", f.synopsis)
	printDefaults(w, f.FlagSet)
}

func printDefaults(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(fl *flag.Flag) {
		name, usage := flag.UnquoteUsage(fl)
		fmt.Fprintf(w, "  --%s %s\n    \t%s (env %s", fl.Name, name, usage, envName(fl.Name))
		if fl.DefValue != "" && !strings.Contains(fl.Usage, "password") && !strings.Contains(fl.Usage, "key") {
			fmt.Fprintf(w, ", default %q", fl.DefValue)
		}
		fmt.Fprintln(w, ")")
	})
}

func envName(flagName string) string {
	return "PORTALMAIL_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (f *flags) env(name, def string) string {
	if v := f.getenv(envName(name)); v != "" {
		return v
	}
	return def
}

// String binds a string flag whose default comes from PORTALMAIL_<NAME> when set.
func (f *flags) String(p *string, name, def, usage string) {
	f.StringVar(p, name, f.env(name, def), usage)
}

// Int binds an integer flag whose default comes from PORTALMAIL_<NAME> when set.
func (f *flags) Int(p *int, name string, def int, usage string) {
	v := def
	if s := f.getenv(envName(name)); s != "" {
		if _, err := fmt.Sscan(s, &v); err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: not an integer", envName(name), s))
		}
	}
	f.IntVar(p, name, v, usage)
}

// Float binds a number flag whose default comes from PORTALMAIL_<NAME> when set.
func (f *flags) Float(p *float64, name string, def float64, usage string) {
	v := def
	if s := f.getenv(envName(name)); s != "" {
		if _, err := fmt.Sscan(s, &v); err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: not a number", envName(name), s))
		}
	}
	f.Float64Var(p, name, v, usage)
}

// Duration binds a duration flag whose default comes from PORTALMAIL_<NAME> when set.
func (f *flags) Duration(p *time.Duration, name string, def time.Duration, usage string) {
	v := def
	if s := f.getenv(envName(name)); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: %v", envName(name), s, err))
		}
		v = d
	}
	f.DurationVar(p, name, v, usage)
}

// Bool binds a boolean flag whose default comes from PORTALMAIL_<NAME> when set.
func (f *flags) Bool(p *bool, name string, def bool, usage string) {
	v := def
	if s := f.getenv(envName(name)); s != "" {
		v = s == "1" || strings.EqualFold(s, "true") || strings.EqualFold(s, "yes")
	}
	f.BoolVar(p, name, v, usage)
}

// parse parses args and returns environment errors first. On -h it prints
// the usage and returns flag.ErrHelp; on a malformed flag or a stray
// argument it prints the usage and returns the error, for the caller to
// print after it.
func (f *flags) parse(args []string) error {
	if err := f.Parse(args); err != nil {
		f.usage(f.stderr)
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(f.stderr)
		}
		return err
	}
	if f.NArg() > 0 {
		f.usage(f.stderr)
		fmt.Fprintln(f.stderr)
		return fmt.Errorf("unexpected arguments: %s", strings.Join(f.Args(), " "))
	}
	if len(f.errs) > 0 {
		return fmt.Errorf("bad environment: %v", f.errs)
	}
	for _, load := range f.files {
		if err := load(); err != nil {
			return err
		}
	}
	return nil
}

// Secret binds a secret: --name, or PORTALMAIL_NAME, or the contents of the
// file named by --name-file / PORTALMAIL_NAME_FILE. Secrets are never echoed
// in help output or errors.
func (f *flags) Secret(p *string, name, usage string) {
	f.StringVar(p, name, f.env(name, ""), usage+" (prefer --"+name+"-file)")
	file := f.env(name+"-file", "")
	f.Func(name+"-file", "file holding the "+usage, func(path string) error {
		file = path
		return nil
	})
	f.files = append(f.files, func() error {
		if file == "" || *p != "" {
			return nil
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("--%s-file: %w", name, err)
		}
		*p = strings.TrimSpace(string(b))
		return nil
	})
}

// load parses args, then runs validate (which sees the parsed values) and
// reports every problem it finds as one "invalid configuration" error.
// validate must read the config when called: pass a closure, not a method
// value of a value receiver (that copies the config before parsing).
func (f *flags) load(args []string, validate func() error) error {
	if err := f.parse(args); err != nil {
		return err
	}
	if err := validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	return nil
}

// StringOrFile binds a string flag whose value may carry a credential (a
// Redis URL with a password): --name, else PORTALMAIL_NAME, else the
// contents of the file named by --name-file / PORTALMAIL_NAME_FILE (a
// mounted Secret), else def.
func (f *flags) StringOrFile(p *string, name, def, usage string) {
	f.String(p, name, def, usage+" (or --"+name+"-file)")
	file := f.env(name+"-file", "")
	f.Func(name+"-file", "file holding the "+name+" (read when --"+name+" is not set)", func(path string) error {
		file = path
		return nil
	})
	f.files = append(f.files, func() error {
		set := f.getenv(envName(name)) != ""
		f.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
		if file == "" || set {
			return nil
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("--%s-file: %w", name, err)
		}
		*p = strings.TrimSpace(string(b))
		return nil
	})
}
