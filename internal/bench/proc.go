package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// userHZ is the unit of the times in /proc/PID/stat. The kernel reports
// them in USER_HZ, which is 100 on every architecture Linux runs on today,
// whatever the kernel's own tick rate.
const userHZ = 100

var errProcFormat = errors.New("unexpected /proc format")

// procCPU returns the CPU time (user plus system, all threads, live and
// exited) that process pid has used.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime, fields 14 and 15 of /proc/PID/stat.
// The command name (field 2) is in parentheses and may itself hold spaces
// and parentheses, so fields are counted from the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: %w", errProcFormat)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %w", errProcFormat)
	}
	utime, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat utime/stime: %w", errProcFormat)
	}
	return time.Duration(utime+stime) * (time.Second / userHZ), nil
}

// idleRest is how long a daemon rests after its first answer before its
// idle RSS is read: as one that started at boot would be found (portmapd
// trims its start-up pages a second after it starts serving).
const idleRest = 1500 * time.Millisecond

// idleRSS reads pid's RSS in KiB after idleRest.
func idleRSS(ctx context.Context, pid int) (int64, error) {
	select {
	case <-time.After(idleRest):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	kb, _ := procRSS(pid)
	return kb, nil
}

// procRSS returns the resident set size of process pid in KiB.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseStatusKB(b, "VmRSS:")
}

// parseStatusKB reads a "Name:   1234 kB" line of /proc/PID/status.
func parseStatusKB(b []byte, name string) (int64, error) {
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte(name))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("status %s: %w", name, errProcFormat)
		}
		return strconv.ParseInt(string(f[0]), 10, 64)
	}
	return 0, fmt.Errorf("status: no %s line: %w", name, errProcFormat)
}

// loadAvg returns the machine's one-minute load average.
func loadAvg() (float64, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, err
	}
	f := bytes.Fields(b)
	if len(f) == 0 {
		return 0, fmt.Errorf("loadavg: %w", errProcFormat)
	}
	return strconv.ParseFloat(string(f[0]), 64)
}
