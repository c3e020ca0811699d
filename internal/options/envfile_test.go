package options

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// envFileCases are files with the variables /bin/sh sets when it sources
// them; TestParseEnvFileAgreesWithSh checks them against a real shell.
var envFileCases = []struct {
	name string
	file string
	want map[string]string
}{
	{"plain assignment", "OPTIONS=-w\n", map[string]string{"OPTIONS": "-w"}},
	{"Debian's rpcbind file", `# /etc/init.d/rpcbind

OPTIONS=""

# Cause rpcbind to do a "warm start" utilizing a state file (default)
OPTIONS="-w"

# Uncomment the following line to restrict rpcbind to localhost only for UDP requests
OPTIONS="${OPTIONS} -h 127.0.0.1 -h ::1"
`, map[string]string{"OPTIONS": "-w -h 127.0.0.1 -h ::1"}},
	{"$NAME without braces", "A=x\nB=$A-y\n", map[string]string{"A": "x", "B": "x-y"}},
	{"unset names expand to nothing", "A=[$NOPE]\n", map[string]string{"A": "[]"}},
	{"single quotes are verbatim", `A='$B "c" \n'` + "\n", map[string]string{"A": `$B "c" \n`}},
	{"double quotes escape only $ ` \" \\", `A="\$x \"q\" \\ \n"` + "\n", map[string]string{"A": `$x "q" \ \n`}},
	{"unquoted backslash escapes anything", `A=a\ b\"c\\d` + "\n", map[string]string{"A": `a b"c\d`}},
	{"pieces concatenate", `A=a'b c'"d e"f` + "\n", map[string]string{"A": "ab cd ef"}},
	{"expansions keep their spaces", "A='x  y'\nB=$A\n", map[string]string{"A": "x  y", "B": "x  y"}},
	{"export prefix", "export A=1\nexport B\nexport C=2 D=3\n", map[string]string{"A": "1", "C": "2", "D": "3"}},
	{"several on a line", "A=1 B=2; C=3\n", map[string]string{"A": "1", "B": "2", "C": "3"}},
	{"comment after a value", "A=1 # the first\nB=x#y\n", map[string]string{"A": "1", "B": "x#y"}},
	{"indented lines and blank lines", "  \t A=1\n\n\n\tB=2\n", map[string]string{"A": "1", "B": "2"}},
	{"quotes span lines", "A='one\ntwo'\nB=\"three\nfour\"\n", map[string]string{"A": "one\ntwo", "B": "three\nfour"}},
	{"backslash-newline continues", "A=one\\\ntwo\nB=\"x\\\ny\"\n", map[string]string{"A": "onetwo", "B": "xy"}},
	{"a lone dollar sign is literal", "A=$\nB=\"a $ b\"\n", map[string]string{"A": "$", "B": "a $ b"}},
	{"empty value", "A=\nB=''\n", map[string]string{"A": "", "B": ""}},
	{"no final newline", "A=1", map[string]string{"A": "1"}},
	{"later assignments win", "A=1\nA=2\n", map[string]string{"A": "2"}},
}

func TestParseEnvFileReadsShellAssignments(t *testing.T) {
	for _, tt := range envFileCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEnvFile(strings.NewReader(tt.file), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestParseEnvFileAgreesWithSh sources each case with /bin/sh (dash on
// Debian, the shell init scripts run under) and compares.
func TestParseEnvFileAgreesWithSh(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	for _, tt := range envFileCases {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "default")
			if err := os.WriteFile(path, []byte(tt.file), 0o644); err != nil {
				t.Fatal(err)
			}
			for name, want := range tt.want {
				out, err := exec.Command("sh", "-c", `set -e; . "$1"; printf %s "$(eval printf %s \"\${$2}\")"`, "sh", path, name).Output()
				if err != nil {
					t.Fatalf("sh: %v", err)
				}
				if string(out) != want {
					t.Errorf("sh says %s=%q, the test wants %q", name, out, want)
				}
			}
		})
	}
}

func TestParseEnvFileExpandsFromLookupAfterTheFile(t *testing.T) {
	lookup := func(k string) (string, bool) {
		if k == "HOSTNAME" || k == "A" {
			return "from-env", true
		}
		return "", false
	}
	got, err := ParseEnvFile(strings.NewReader("A=file\nB=$A/$HOSTNAME/$NONE\n"), lookup)
	if err != nil {
		t.Fatal(err)
	}
	if got["B"] != "file/from-env/" {
		t.Errorf("B = %q", got["B"])
	}
}

func TestParseEnvFileRunsNothing(t *testing.T) {
	tests := []struct {
		name, file, says string
	}{
		{"a command", "A=1\n[ -f /etc/x ] && A=2\n", "line 2"},
		{"a command word after an assignment", "A=1 echo hi\n", "not an assignment"},
		{"command substitution", "A=$(id -u)\n", "command substitution"},
		{"backquotes", "A=\"`id -u`\"\n", "command substitution"},
		{"an expansion with an operator", "A=${B:-x}\n", "${NAME}"},
		{"a special parameter", "A=$1\n", "special parameter"},
		{"a pipe", "A=1|cat\n", "operator"},
		{"unterminated single quote", "A='x\n", "unterminated single quote"},
		{"unterminated double quote", "\nA=\"x\n", "line 2: unterminated double quote"},
		{"spaces around =", "A = 1\n", "not an assignment"},
		{"export of a non-name", "export 1A=2\n", "not a variable name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseEnvFile(strings.NewReader(tt.file), nil)
			if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("got %v, want a syntax error saying %q", err, tt.says)
			}
		})
	}
}

func TestReadEnvFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadEnvFile(filepath.Join(dir, "missing"), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	path := filepath.Join(dir, "portmapd")
	os.WriteFile(path, []byte("OPTIONS='-w'\n"), 0o644)
	vars, err := ReadEnvFile(path, nil)
	if err != nil || vars["OPTIONS"] != "-w" {
		t.Errorf("got %q, %v", vars, err)
	}
	os.WriteFile(path, []byte("OPTIONS=$(rm -rf /)\n"), 0o644)
	if _, err := ReadEnvFile(path, nil); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("error %v should name the file", err)
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, []byte(strings.Repeat("#\n", maxEnvFile)), 0o644)
	if _, err := ReadEnvFile(big, nil); !errors.Is(err, ErrSyntax) {
		t.Errorf("a file over the limit: %v", err)
	}
}

// TestTheShippedDefaultFile reads cmd/portmapd/portmapd.default as it is,
// and with its commented examples switched on.
func TestTheShippedDefaultFile(t *testing.T) {
	b, err := os.ReadFile("../../cmd/portmapd/portmapd.default")
	if err != nil {
		t.Skipf("no shipped default file: %v", err)
	}
	vars, err := ParseEnvFile(strings.NewReader(string(b)), nil)
	if err != nil {
		t.Fatal(err)
	}
	flags, _, err := TranslateRpcbind(strings.Fields(vars["OPTIONS"]))
	if err != nil || !reflect.DeepEqual(flags, []string{"--warm-start"}) {
		t.Errorf("as shipped: OPTIONS=%q gives %q, %v", vars["OPTIONS"], flags, err)
	}
	var on []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "#OPTIONS=") || strings.HasPrefix(l, "#PORTMAPD_") {
			l = l[1:]
		}
		on = append(on, l)
	}
	vars, err = ParseEnvFile(strings.NewReader(strings.Join(on, "\n")), nil)
	if err != nil {
		t.Fatal(err)
	}
	flags, _, err = TranslateRpcbind(strings.Fields(vars["OPTIONS"]))
	want := []string{"--warm-start", "--host=192.168.1.10", "--remote-calls"}
	if err != nil || !reflect.DeepEqual(flags, want) {
		t.Errorf("examples on: OPTIONS=%q gives %q, %v; want %q", vars["OPTIONS"], flags, err, want)
	}
	if vars["PORTMAPD_LOG_CALLS"] != "1" || vars["PORTMAPD_HOST"] != "192.168.1.10,fd00::10" {
		t.Errorf("examples on: %q", vars)
	}
}
