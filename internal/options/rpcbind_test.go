package options

import (
	"reflect"
	"strings"
	"testing"
)

func TestTranslateRpcbindMapsEveryOption(t *testing.T) {
	tests := []struct {
		name  string
		args  string
		flags []string
		notes int
	}{
		{"Debian's default: warm start", "-w", []string{"--warm-start"}, 0},
		{"the issue's example", "-w -h 10.0.0.1 -i", []string{"--warm-start", "--host=10.0.0.1", "--insecure"}, 1},
		{"-h repeated, IPv6 too", "-h 127.0.0.1 -h ::1", []string{"--host=127.0.0.1", "--host=::1"}, 1},
		{"-h with the address attached", "-h10.0.0.1", []string{"--host=10.0.0.1"}, 1},
		{"a cluster", "-wir", []string{"--warm-start", "--insecure", "--remote-calls"}, 0},
		{"a cluster ending in -h", "-wh 10.0.0.1", []string{"--warm-start", "--host=10.0.0.1"}, 1},
		{"-a is accepted and noted", "-a", nil, 1},
		{"-d is debug logging", "-d", []string{"--log-level=debug"}, 1},
		{"-f is accepted and noted", "-f", nil, 1},
		{"-l logs calls", "-l", []string{"--log-calls"}, 1},
		{"-r enables remote calls", "-r", []string{"--remote-calls"}, 0},
		{"-s runs as _rpc", "-s", []string{"--user=_rpc"}, 0},
		{"Debian's unit: -f and the file's -w", "-f -w", []string{"--warm-start"}, 1},
		{"a note is given once", "-f -f -ff", nil, 1},
		{"portmapd's long flags pass", "--log-calls --host 10.0.0.2 -w", []string{"--log-calls", "--host", "10.0.0.2", "--warm-start"}, 0},
		{"portmapd's -H passes as --host", "-H 10.0.0.3", []string{"--host=10.0.0.3"}, 0},
		{"-- ends the options", "-w --", []string{"--warm-start"}, 0},
		{"-v asks for the version (rpcbind 1.2.8)", "-v", []string{"--version"}, 0},
		{"nothing", "", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flags, notes, err := TranslateRpcbind(strings.Fields(tt.args))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(flags, tt.flags) || len(notes) != tt.notes {
				t.Errorf("got %q with notes %q, want %q with %d notes", flags, notes, tt.flags, tt.notes)
			}
		})
	}
}

func TestTranslateRpcbindRefusesWhatItCannotMean(t *testing.T) {
	tests := []struct{ name, args, says string }{
		{"an unknown option", "-w -x", "-x"},
		{"-h without an address", "-w -h", "-h needs an address"},
		{"arguments after --", "-- foo", "no arguments"},
		{"portmap 6.0's -t chroot", "-t /var/empty", "-t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := TranslateRpcbind(strings.Fields(tt.args))
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("got %v, want an error saying %q", err, tt.says)
			}
		})
	}
}

func TestRewriteArgv(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want []string
	}{
		{"run as rpcbind", []string{"/sbin/rpcbind", "-f", "-w", "-h", "10.0.0.1", "-i"},
			[]string{"/sbin/rpcbind", "serve", "--warm-start", "--host=10.0.0.1", "--insecure"}},
		{"run as rpcbind with no options", []string{"rpcbind"}, []string{"rpcbind", "serve"}},
		{"rpcbind -v: the version, whatever else is there", []string{"/sbin/rpcbind", "-w", "-fv"}, []string{"/sbin/rpcbind", "--version"}},
		{"run as portmapd: untouched", []string{"/usr/sbin/portmapd", "serve", "-H", "10.0.0.1"},
			[]string{"/usr/sbin/portmapd", "serve", "-H", "10.0.0.1"}},
		{"empty argv: untouched", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := RewriteArgv(tt.argv)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if _, _, err := RewriteArgv([]string{"rpcbind", "-z"}); err == nil {
		t.Error("rpcbind -z accepted")
	}
}
