package options

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// serveConfig mirrors the serve command's flags (internal/cli/serve.go),
// with the ones rpcbind's options map to that serve does not have yet.
type serveConfig struct {
	logLevel, logFormat string
	envFile             string
	port                int
	hosts               []string
	socket              string
	insecure, logCalls  bool
	noIPv6              bool
	warmStart, remote   bool
	user                string
}

// runServe builds a root and serve command as the CLI does and runs it
// with args, calling Load at the start of RunE as the daemon would.
func runServe(t *testing.T, args, environ []string) (serveConfig, Result, error) {
	t.Helper()
	var cfg serveConfig
	var res Result
	root := &cobra.Command{Use: "portmapd", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().StringVar(&cfg.logLevel, "log-level", "info", "")
	root.PersistentFlags().StringVar(&cfg.logFormat, "log-format", "console", "")
	serve := &cobra.Command{
		Use:  "serve",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			res, err = Load(cmd.Flags(), environ)
			return err
		},
	}
	f := serve.Flags()
	f.StringVar(&cfg.envFile, EnvFileFlag, DefaultEnvFile, "")
	f.IntVar(&cfg.port, "port", 111, "")
	f.StringSliceVarP(&cfg.hosts, "host", "H", nil, "")
	f.StringVar(&cfg.socket, "socket", "/run/rpcbind.sock", "")
	f.BoolVarP(&cfg.insecure, "insecure", "i", false, "")
	f.BoolVar(&cfg.logCalls, "log-calls", false, "")
	f.BoolVar(&cfg.noIPv6, "no-ipv6", false, "")
	f.BoolVar(&cfg.warmStart, "warm-start", false, "")
	f.BoolVar(&cfg.remote, "remote-calls", false, "")
	f.StringVar(&cfg.user, "user", "", "")
	root.AddCommand(serve)
	root.SetArgs(append([]string{"serve"}, args...))
	err := root.ExecuteContext(context.Background())
	return cfg, res, err
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "portmapd")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func defaults() serveConfig {
	return serveConfig{logLevel: "info", logFormat: "console", envFile: DefaultEnvFile, port: 111, socket: "/run/rpcbind.sock"}
}

func TestLoadPrecedence(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		environ []string
		file    string // "" for no file
		want    func(*serveConfig)
	}{
		{"nothing set anywhere: defaults", nil, nil, "", func(*serveConfig) {}},
		{"PORTMAPD_INSECURE=1 is --insecure", nil, []string{"PORTMAPD_INSECURE=1"}, "",
			func(c *serveConfig) { c.insecure = true }},
		{"PORTMAPD_HOST=a,b is --host a,b", nil, []string{"PORTMAPD_HOST=10.0.0.1,10.0.0.2"}, "",
			func(c *serveConfig) { c.hosts = []string{"10.0.0.1", "10.0.0.2"} }},
		{"PORTMAPD_LOG_CALLS reaches a dashed flag", nil, []string{"PORTMAPD_LOG_CALLS=true"}, "",
			func(c *serveConfig) { c.logCalls = true }},
		{"a persistent flag of the root command", nil, []string{"PORTMAPD_LOG_LEVEL=debug"}, "",
			func(c *serveConfig) { c.logLevel = "debug" }},
		{"the command line beats the environment", []string{"--host", "10.9.9.9", "--insecure=false"},
			[]string{"PORTMAPD_HOST=10.0.0.1", "PORTMAPD_INSECURE=1"}, "",
			func(c *serveConfig) { c.hosts = []string{"10.9.9.9"} }},
		{"an empty variable is unset", nil, []string{"PORTMAPD_SOCKET=", "PORTMAPD_HOST="}, "", func(*serveConfig) {}},
		{"OPTIONS in rpcbind's words", nil, nil, `OPTIONS="-w -h 10.0.0.1 -h ::1 -i -r -s"`,
			func(c *serveConfig) {
				c.warmStart, c.insecure, c.remote, c.user = true, true, true, "_rpc"
				c.hosts = []string{"10.0.0.1", "::1"}
			}},
		{"OPTIONS in portmapd's words", nil, nil, `OPTIONS="--log-calls --port=1111 -H 10.0.0.5 --log-level warn"`,
			func(c *serveConfig) {
				c.logCalls, c.port, c.hosts, c.logLevel = true, 1111, []string{"10.0.0.5"}, "warn"
			}},
		{"Debian's ${OPTIONS} idiom", nil, nil, "OPTIONS=\"-w\"\nOPTIONS=\"${OPTIONS} -h 127.0.0.1\"\n",
			func(c *serveConfig) { c.warmStart, c.hosts = true, []string{"127.0.0.1"} }},
		{"-d in OPTIONS is debug logging", nil, nil, "OPTIONS=-d",
			func(c *serveConfig) { c.logLevel = "debug" }},
		{"the file's PORTMAPD_ variable beats its OPTIONS", nil, nil, "OPTIONS='--port 2222'\nPORTMAPD_PORT=1111\n",
			func(c *serveConfig) { c.port = 1111 }},
		{"the environment beats the file", nil, []string{"PORTMAPD_PORT=3333"}, "PORTMAPD_PORT=1111\nOPTIONS='--port 2222'\n",
			func(c *serveConfig) { c.port = 3333 }},
		{"the environment replaces OPTIONS' hosts, not adds to them", nil, []string{"PORTMAPD_HOST=10.0.0.7"},
			"OPTIONS='-h 10.0.0.1'", func(c *serveConfig) { c.hosts = []string{"10.0.0.7"} }},
		{"the command line beats the file", []string{"--port", "4444", "--warm-start=false"}, nil,
			"OPTIONS='-w --port 2222'\nPORTMAPD_PORT=1111\n", func(c *serveConfig) { c.port = 4444 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			want := defaults()
			if tt.file != "" {
				path := writeFile(t, tt.file)
				args = append([]string{"--env-file", path}, args...)
				want.envFile = path
			} else {
				args = append([]string{"--env-file", ""}, args...)
				want.envFile = ""
			}
			tt.want(&want)
			got, res, err := runServe(t, args, tt.environ)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v\nsettings %+v", got, want, res.Settings)
			}
		})
	}
}

func TestLoadFindsTheFile(t *testing.T) {
	path := writeFile(t, "OPTIONS=-w\n")
	t.Run("through PORTMAPD_ENV_FILE", func(t *testing.T) {
		got, res, err := runServe(t, nil, []string{"PORTMAPD_ENV_FILE=" + path})
		if err != nil {
			t.Fatal(err)
		}
		if !got.warmStart || !reflect.DeepEqual(res.Files, []string{path}) || got.envFile != path {
			t.Errorf("got %+v, result %+v", got, res)
		}
	})
	t.Run("a missing default file is no error", func(t *testing.T) {
		if _, err := os.Stat(DefaultEnvFile); err == nil {
			t.Skipf("%s exists here", DefaultEnvFile)
		}
		got, res, err := runServe(t, nil, nil)
		if err != nil || len(res.Files) != 0 || got.warmStart {
			t.Errorf("got %+v, %+v, %v", got, res, err)
		}
	})
	t.Run("a missing file named on purpose is an error", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "none")
		if _, _, err := runServe(t, []string{"--env-file", missing}, nil); err == nil {
			t.Error("--env-file naming a missing file accepted")
		}
		if _, _, err := runServe(t, nil, []string{"PORTMAPD_ENV_FILE=" + missing}); err == nil {
			t.Error("PORTMAPD_ENV_FILE naming a missing file accepted")
		}
	})
	t.Run("settings name their source", func(t *testing.T) {
		_, res, err := runServe(t, []string{"--env-file", path}, []string{"PORTMAPD_INSECURE=yes"})
		if err == nil {
			t.Fatalf("PORTMAPD_INSECURE=yes accepted: %+v", res)
		}
		_, res, err = runServe(t, []string{"--env-file", path}, []string{"PORTMAPD_INSECURE=1"})
		if err != nil {
			t.Fatal(err)
		}
		want := []Setting{
			{"insecure", "1", "environment PORTMAPD_INSECURE"},
			{"warm-start", "true", path + " OPTIONS"},
		}
		if !reflect.DeepEqual(res.Settings, want) {
			t.Errorf("got %+v, want %+v", res.Settings, want)
		}
	})
}

func TestLoadNotesAndErrors(t *testing.T) {
	t.Run("unknown variables are noted", func(t *testing.T) {
		path := writeFile(t, "PORTMAPD_COLOUR=blue\nPORTMAPD_ENV_FILE=/x\nOTHER=1\n")
		_, res, err := runServe(t, []string{"--env-file", path}, []string{"PORTMAPD_FROB=1", "HOME=/root"})
		if err != nil {
			t.Fatal(err)
		}
		notes := strings.Join(res.Notes, "\n")
		for _, want := range []string{"PORTMAPD_FROB matches no flag", path + " PORTMAPD_COLOUR matches no flag",
			path + " PORTMAPD_ENV_FILE matches no flag"} {
			if !strings.Contains(notes, want) {
				t.Errorf("notes %q lack %q", notes, want)
			}
		}
		if strings.Contains(notes, "OTHER") || strings.Contains(notes, "HOME") {
			t.Errorf("notes %q mention variables without the prefix", notes)
		}
	})
	t.Run("rpcbind notes are passed on", func(t *testing.T) {
		path := writeFile(t, "OPTIONS='-f -w'")
		_, res, err := runServe(t, []string{"--env-file", path}, nil)
		if err != nil || len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "foreground") {
			t.Errorf("notes %q, %v", res.Notes, err)
		}
	})
	tests := []struct {
		name, file string
		environ    []string
		says       string
	}{
		{"an unknown flag in OPTIONS", "OPTIONS='--frobnicate'", nil, "unknown flag"},
		{"an unknown rpcbind option in OPTIONS", "OPTIONS='-z'", nil, "-z"},
		{"a stray word in OPTIONS", "OPTIONS='-w extra'", nil, "unexpected arguments"},
		{"a bad value in OPTIONS", "OPTIONS='--port=x'", nil, "invalid argument"},
		{"a bad value in the environment", "", []string{"PORTMAPD_PORT=x"}, "PORTMAPD_PORT"},
		{"a file the shell would run", "A=$(true)", nil, "command substitution"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"--env-file", ""}
			if tt.file != "" {
				args[1] = writeFile(t, tt.file)
			}
			_, _, err := runServe(t, args, tt.environ)
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("got %v, want an error saying %q", err, tt.says)
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	for flag, want := range map[string]string{"host": "PORTMAPD_HOST", "log-calls": "PORTMAPD_LOG_CALLS",
		"no-ipv6": "PORTMAPD_NO_IPV6", "env-file": "PORTMAPD_ENV_FILE"} {
		if got := EnvName(flag); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", flag, got, want)
		}
	}
}

// runServeFiles runs Load with --env-file a string list, as the serve
// command declares it, and the given files in that order.
func runServeFiles(t *testing.T, files []string, environ []string) (serveConfig, Result, error) {
	t.Helper()
	var cfg serveConfig
	var res Result
	cmd := &cobra.Command{Use: "serve", Args: cobra.NoArgs, SilenceUsage: true, SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			res, err = Load(cmd.Flags(), environ)
			return err
		}}
	f := cmd.Flags()
	f.StringSlice(EnvFileFlag, DefaultEnvFiles, "")
	f.IntVar(&cfg.port, "port", 111, "")
	f.StringSliceVarP(&cfg.hosts, "host", "H", nil, "")
	f.BoolVarP(&cfg.insecure, "insecure", "i", false, "")
	f.BoolVar(&cfg.logCalls, "log-calls", false, "")
	f.BoolVar(&cfg.warmStart, "warm-start", false, "")
	f.BoolVar(&cfg.remote, "remote-calls", false, "")
	f.StringVar(&cfg.user, "user", "", "")
	cmd.SetArgs([]string{"--env-file", strings.Join(files, ",")})
	err := cmd.ExecuteContext(context.Background())
	return cfg, res, err
}

func TestDefaultEnvFilesAreRpcbindsThenOurs(t *testing.T) {
	want := []string{"/etc/rpcbind.conf", "/etc/default/rpcbind", "/etc/sysconfig/rpcbind", "/etc/default/portmapd"}
	if !reflect.DeepEqual(DefaultEnvFiles, want) {
		t.Errorf("DefaultEnvFiles = %q, want %q", DefaultEnvFiles, want)
	}
}

// TestLoadReadsRpcbindsFilesUnderOurs: each file may use any of the
// variables distributions give rpcbind's options in, and a later file
// wins flag by flag (portmapd's own is last).
func TestLoadReadsRpcbindsFilesUnderOurs(t *testing.T) {
	conf := writeFile(t, "RPCBIND_OPTIONS='-w -h 10.0.0.1'\n")                 // upstream's unit
	debian := writeFile(t, "OPTIONS=\"-w\"\nOPTIONS=\"${OPTIONS} -i\"\n")      // Debian's
	fedora := writeFile(t, "RPCBIND_ARGS=\"-r -h 10.0.0.2\"\nRPCBIND_ARGS=\n") // cleared again
	ours := writeFile(t, "OPTIONS='--log-calls -h 10.0.0.3'\nPORTMAPD_PORT=2222\n")
	missing := filepath.Join(t.TempDir(), "none")

	t.Run("all four", func(t *testing.T) {
		got, res, err := runServeFiles(t, []string{conf, debian, fedora, ours}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := serveConfig{port: 2222, hosts: []string{"10.0.0.3"}, insecure: true, logCalls: true, warmStart: true}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got  %+v\nwant %+v\nsettings %+v", got, want, res.Settings)
		}
		if !reflect.DeepEqual(res.Files, []string{conf, debian, fedora, ours}) {
			t.Errorf("files %q", res.Files)
		}
		sources := map[string]string{}
		for _, s := range res.Settings {
			sources[s.Flag] = s.Source
		}
		wantSources := map[string]string{"port": ours + " PORTMAPD_PORT", "host": ours + " OPTIONS",
			"insecure": debian + " OPTIONS", "warm-start": debian + " OPTIONS", "log-calls": ours + " OPTIONS"}
		if !reflect.DeepEqual(sources, wantSources) {
			t.Errorf("sources %q, want %q", sources, wantSources)
		}
	})
	t.Run("rpcbind's alone: a later file's -h replaces an earlier one's", func(t *testing.T) {
		later := writeFile(t, "OPTIONS='-h 10.0.0.9'\nRPCBIND_OPTIONS='-h 10.0.0.8 -s'\n")
		got, _, err := runServeFiles(t, []string{conf, later}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := serveConfig{port: 111, hosts: []string{"10.0.0.9", "10.0.0.8"}, warmStart: true, user: "_rpc"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got  %+v\nwant %+v", got, want)
		}
	})
	t.Run("the environment still wins", func(t *testing.T) {
		got, _, err := runServeFiles(t, []string{conf, ours}, []string{"PORTMAPD_HOST=10.0.0.7", "PORTMAPD_PORT=3333"})
		if err != nil {
			t.Fatal(err)
		}
		if got.port != 3333 || !reflect.DeepEqual(got.hosts, []string{"10.0.0.7"}) || !got.warmStart {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("a file named on purpose must exist", func(t *testing.T) {
		if _, _, err := runServeFiles(t, []string{conf, missing}, nil); err == nil {
			t.Error("a missing file named with --env-file accepted")
		}
	})
	t.Run("an error names the file and the variable", func(t *testing.T) {
		bad := writeFile(t, "RPCBIND_ARGS='-z'\n")
		_, _, err := runServeFiles(t, []string{conf, bad}, nil)
		if err == nil || !strings.Contains(err.Error(), bad+": RPCBIND_ARGS") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("no files", func(t *testing.T) {
		got, res, err := runServeFiles(t, nil, nil)
		if err != nil || len(res.Files) != 0 || got.warmStart {
			t.Errorf("got %+v, %+v, %v", got, res, err)
		}
	})
}
