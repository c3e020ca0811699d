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
	// File is the environment file read, "" if none was (no flag, an
	// empty path, or a file that does not exist).
	File string
	// Settings applied, in flag order.
	Settings []Setting
	// Notes on options translated from rpcbind's and on PORTMAPD_*
	// variables that match no flag; worth logging, not worth failing for.
	Notes []string
}

// Load sets every flag of fs that the command line did not set (so call it
// after parsing, at the start of RunE) from, in this order of precedence:
//
//  1. the PORTMAPD_* variable in environ (os.Environ());
//  2. the PORTMAPD_* variable assigned in the environment file;
//  3. the flag's occurrences in the file's OPTIONS, split into words on
//     blanks (as "$OPTIONS" in an init script or unit is) and translated
//     from rpcbind's options (TranslateRpcbind).
//
// The file is the one fs's --env-file flag names (see EnvFileFlag; none if
// fs has no such flag or it is empty). The flag's default file may be
// missing; a file named on the command line or in PORTMAPD_ENV_FILE must
// exist. Its
// $VAR expansions see only its own assignments, not the process
// environment: under systemd that environment may hold the file's own
// variables already, and "${OPTIONS} -h ..." would then count twice.
//
// An empty variable counts as unset: "PORTMAPD_HOST=" in a unit does not
// clear --host. A value sets the flag as if given on the command line, so
// PORTMAPD_HOST=a,b adds two hosts and PORTMAPD_INSECURE=1 (or true)
// turns --insecure on. A lower source is not merged into a higher one:
// PORTMAPD_HOST replaces the --host words of OPTIONS rather than adding
// to them. The help flag is never set this way.
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

	// The file's path is itself a setting, resolved first.
	var file map[string]string
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
		if path := f.Value.String(); path != "" {
			vars, err := ReadEnvFile(path, nil)
			switch {
			case isNotExist(err) && !explicit:
				// The default file is optional, as EnvironmentFile=-;
				// one named on purpose must be there.
			case err != nil:
				return res, err
			default:
				file, res.File = vars, path
			}
		}
	}

	var optValues map[string][]string
	if words := strings.Fields(file["OPTIONS"]); len(words) > 0 {
		flags, notes, err := TranslateRpcbind(words)
		if err != nil {
			return res, fmt.Errorf("%s: OPTIONS: %w", res.File, err)
		}
		for _, n := range notes {
			res.Notes = append(res.Notes, res.File+": OPTIONS: "+n)
		}
		if optValues, err = recordFlags(fs, flags); err != nil {
			return res, fmt.Errorf("%s: OPTIONS=%q: %w", res.File, file["OPTIONS"], err)
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
		switch {
		case env[name] != "":
			set(env[name], "environment "+name)
		case file[name] != "":
			set(file[name], res.File+" "+name)
		default:
			for _, v := range optValues[f.Name] {
				set(v, res.File+" OPTIONS")
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
	for k := range file {
		if strings.HasPrefix(k, EnvPrefix) && (!known[k] || k == EnvName(EnvFileFlag)) {
			unknown = append(unknown, res.File+" "+k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		res.Notes = append(res.Notes, k+" matches no flag and is ignored")
	}
	return res, nil
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
