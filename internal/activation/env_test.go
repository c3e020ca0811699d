package activation

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

func TestListenEnvFollowsSdListenFds(t *testing.T) {
	const pid = 4242
	tests := []struct {
		name    string
		env     []string
		n       int
		names   []string
		wantErr bool
	}{
		{"no LISTEN_PID: not activated", []string{"LISTEN_FDS=2"}, 0, nil, false},
		{"LISTEN_PID of another process: the sockets are not ours",
			[]string{"LISTEN_PID=1", "LISTEN_FDS=2"}, 0, nil, false},
		{"our pid: the count", []string{"LISTEN_PID=4242", "LISTEN_FDS=5"}, 5, nil, false},
		{"names when there is one per descriptor",
			[]string{"LISTEN_PID=4242", "LISTEN_FDS=2", "LISTEN_FDNAMES=a:b"}, 2, []string{"a", "b"}, false},
		{"names dropped when their count differs",
			[]string{"LISTEN_PID=4242", "LISTEN_FDS=2", "LISTEN_FDNAMES=a"}, 2, nil, false},
		{"empty names kept in place",
			[]string{"LISTEN_PID=4242", "LISTEN_FDS=3", "LISTEN_FDNAMES=a::c"}, 3, []string{"a", "", "c"}, false},
		{"zero descriptors", []string{"LISTEN_PID=4242", "LISTEN_FDS=0"}, 0, nil, false},
		{"LISTEN_PID that is not a number", []string{"LISTEN_PID=x", "LISTEN_FDS=1"}, 0, nil, true},
		{"LISTEN_PID zero", []string{"LISTEN_PID=0", "LISTEN_FDS=1"}, 0, nil, true},
		{"LISTEN_FDS missing", []string{"LISTEN_PID=4242"}, 0, nil, true},
		{"LISTEN_FDS negative", []string{"LISTEN_PID=4242", "LISTEN_FDS=-1"}, 0, nil, true},
		{"LISTEN_FDS absurd", []string{"LISTEN_PID=4242", "LISTEN_FDS=100000"}, 0, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, names, err := listenEnv(envOf(tt.env...), pid)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if n != tt.n || !reflect.DeepEqual(names, tt.names) {
				t.Errorf("got %d %q, want %d %q", n, names, tt.n, tt.names)
			}
		})
	}
}

func TestWatchdogEnvFollowsSdWatchdogEnabled(t *testing.T) {
	const pid = 4242
	tests := []struct {
		name    string
		env     []string
		want    time.Duration
		wantErr bool
	}{
		{"no watchdog", nil, 0, false},
		{"WATCHDOG_USEC alone arms it", []string{"WATCHDOG_USEC=30000000"}, 30 * time.Second, false},
		{"our pid arms it", []string{"WATCHDOG_USEC=500", "WATCHDOG_PID=4242"}, 500 * time.Microsecond, false},
		{"another pid does not", []string{"WATCHDOG_USEC=500", "WATCHDOG_PID=1"}, 0, false},
		{"zero is refused", []string{"WATCHDOG_USEC=0"}, 0, true},
		{"garbage is refused", []string{"WATCHDOG_USEC=soon"}, 0, true},
		{"overflowing a Duration is refused", []string{"WATCHDOG_USEC=18446744073709551615"}, 0, true},
		{"bad WATCHDOG_PID is refused", []string{"WATCHDOG_USEC=500", "WATCHDOG_PID=me"}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := watchdogEnv(envOf(tt.env...), pid)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
