package options

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// EnvPrefix starts the environment variable of every flag.
const EnvPrefix = "PORTMAPD_"

// EnvFileFlag is the flag naming the environment file. Load reads the file
// it names; PORTMAPD_ENV_FILE sets it like any other flag (and, in the file
// itself, means nothing).
const EnvFileFlag = "env-file"

// EnvName is the variable for a flag: PORTMAPD_ and the flag's name in
// upper case with dashes as underscores (log-calls: PORTMAPD_LOG_CALLS).
func EnvName(flag string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Setting is one flag Load set, and where the value came from, for the
// daemon to log at start-up.
type Setting struct {
	Flag, Value, Source string
}

// Result is what Load did.
type Result struct {
	// Files are the options files read, lowest precedence first: none
	// for no flag or an empty list, and never a default file that does
	// not exist.
	Files []string
	// Settings applied, in flag order.
	Settings []Setting
	// Notes on options translated from rpcbind's and on PORTMAPD_*
	// variables that match no flag; worth logging, not worth failing for.
	Notes []string
}

// envSource is one options file read: its variables, and per flag the
// values its option words (OptionVars) give, labelled with the variable.
type envSource struct {
	path string
	vars map[string]string
	opts map[string][]sourced
}

type sourced struct{ value, source string }

// Load sets every flag of fs that the command line did not set (so call it
// after parsing, at the start of RunE) from, in this order of precedence:
//
//  1. the PORTMAPD_* variable in environ (os.Environ());
//  2. the options files, the last one first (see DefaultEnvFiles), each
//     by its PORTMAPD_* variable, else by the flag's occurrences in its
//     OPTIONS, RPCBIND_OPTIONS and RPCBIND_ARGS, split into words on
//     blanks (as "$OPTIONS" in an init script or unit is) and translated
//     from rpcbind's options (TranslateRpcbind). The first file that sets
//     the flag at all decides it.
//
// The files are the ones fs's --env-file flag names (see EnvFileFlag; a
// string or a string slice; none if fs has no such flag or it is empty).
// The flag's default files may be missing; one named on the command line
// or in PORTMAPD_ENV_FILE must exist. Each file's $VAR expansions see only
// its own assignments, not the process environment: under systemd that
// environment may hold the file's own variables already, and
// "${OPTIONS} -h ..." would then count twice.
//
// An empty variable counts as unset: "PORTMAPD_HOST=" in a unit does not
// clear --host. A value sets the flag as if given on the command line, so
// PORTMAPD_HOST=a,b adds two hosts and PORTMAPD_INSECURE=1 (or true)
// turns --insecure on. A lower source is not merged into a higher one:
// PORTMAPD_HOST replaces the --host words of OPTIONS, and -h in
// /etc/default/portmapd replaces -h in /etc/default/rpcbind, rather than
// adding to them. The help flag is never set this way.
func Load(fs *pflag.FlagSet, environ []string) (Result, error) {
	var res Result
	fromCmdline := map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { fromCmdline[f.Name] = true })

	env := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, EnvPrefix) {
			env[k] = v
		}
	}
	known := map[string]bool{}
	fs.VisitAll(func(f *pflag.Flag) { known[EnvName(f.Name)] = true })

	// The files' paths are themselves a setting, resolved first.
	var sources []envSource
	if f := fs.Lookup(EnvFileFlag); f != nil {
		explicit := fromCmdline[EnvFileFlag]
		if !explicit {
			if v := env[EnvName(EnvFileFlag)]; v != "" {
				if err := fs.Set(EnvFileFlag, v); err != nil {
					return res, fmt.Errorf("%s=%q: %w", EnvName(EnvFileFlag), v, err)
				}
				res.Settings = append(res.Settings, Setting{EnvFileFlag, v, "environment " + EnvName(EnvFileFlag)})
				explicit = true
			}
		}
		for _, path := range flagValues(f) {
			if path == "" {
				continue
			}
			src, err := readSource(fs, path, &res)
			switch {
			case isNotExist(err) && !explicit:
				// A default file is optional, as EnvironmentFile=-;
				// one named on purpose must be there.
				continue
			case err != nil:
				return res, err
			}
			sources = append(sources, src)
			res.Files = append(res.Files, path)
		}
	}

	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || fromCmdline[f.Name] || f.Name == "help" || f.Name == EnvFileFlag {
			return
		}
		name := EnvName(f.Name)
		set := func(v, source string) {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", source, v, serr)
				return
			}
			res.Settings = append(res.Settings, Setting{f.Name, v, source})
		}
		if env[name] != "" {
			set(env[name], "environment "+name)
			return
		}
		for i := len(sources) - 1; i >= 0; i-- {
			src := sources[i]
			if v := src.vars[name]; v != "" {
				set(v, src.path+" "+name)
				return
			}
			if vals := src.opts[f.Name]; len(vals) > 0 {
				for _, v := range vals {
					set(v.value, v.source)
				}
				return
			}
		}
	})
	if err != nil {
		return res, err
	}

	var unknown []string
	for k := range env {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	for _, src := range sources {
		for k := range src.vars {
			if strings.HasPrefix(k, EnvPrefix) && (!known[k] || k == EnvName(EnvFileFlag)) {
				unknown = append(unknown, src.path+" "+k)
			}
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		res.Notes = append(res.Notes, k+" matches no flag and is ignored")
	}
	return res, nil
}

// flagValues reads a string or string-slice flag.
func flagValues(f *pflag.Flag) []string {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		return sv.GetSlice()
	}
	return []string{f.Value.String()}
}

// readSource reads one options file and records what its option words
// set, adding the translation's notes to res.
func readSource(fs *pflag.FlagSet, path string, res *Result) (envSource, error) {
	vars, err := ReadEnvFile(path, nil)
	if err != nil {
		return envSource{}, err
	}
	src := envSource{path: path, vars: vars, opts: map[string][]sourced{}}
	for _, name := range OptionVars {
		words := strings.Fields(vars[name])
		if len(words) == 0 {
			continue
		}
		flags, notes, err := TranslateRpcbind(words)
		if err != nil {
			return src, fmt.Errorf("%s: %s: %w", path, name, err)
		}
		for _, n := range notes {
			res.Notes = append(res.Notes, path+": "+name+": "+n)
		}
		got, err := recordFlags(fs, flags)
		if err != nil {
			return src, fmt.Errorf("%s: %s=%q: %w", path, name, vars[name], err)
		}
		for fl, vals := range got {
			for _, v := range vals {
				src.opts[fl] = append(src.opts[fl], sourced{v, path + " " + name})
			}
		}
	}
	return src, nil
}

// recordFlags parses args with fs's flags, as the command line would be,
// but into a scratch set that only records each flag's raw values: fs
// itself must not change until precedence is settled, and pflag's parser
// (shorthands, --flag=value, bool flags without a value) is what the
// command line gets, so OPTIONS means exactly what it would there.
func recordFlags(fs *pflag.FlagSet, args []string) (map[string][]string, error) {
	got := map[string][]string{}
	scratch := pflag.NewFlagSet("OPTIONS", pflag.ContinueOnError)
	scratch.SetOutput(io.Discard)
	fs.VisitAll(func(f *pflag.Flag) {
		scratch.AddFlag(&pflag.Flag{
			Name:        f.Name,
			Shorthand:   f.Shorthand,
			NoOptDefVal: f.NoOptDefVal,
			Usage:       f.Usage,
			Value:       &recorder{name: f.Name, typ: f.Value.Type(), got: got},
		})
	})
	if err := scratch.Parse(args); err != nil {
		return nil, err
	}
	if rest := scratch.Args(); len(rest) > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", rest)
	}
	return got, nil
}

// recorder is a pflag.Value that keeps what it is set to.
type recorder struct {
	name, typ string
	got       map[string][]string
}

func (r *recorder) Set(v string) error { r.got[r.name] = append(r.got[r.name], v); return nil }
func (r *recorder) String() string     { return "" }
func (r *recorder) Type() string       { return r.typ }
