package e2e

import (
	"fmt"
	"strings"
)

// RawStep sends msg once over each netid with rpcclient's raw operation and
// expects result on every one; an empty result means no reply: "noreply"
// for a datagram, "closed" for a stream.
func RawStep(name string, msg []byte, result string, netids ...string) Step {
	var ops, want []string
	for _, n := range netids {
		r := result
		if r == "" {
			r = "noreply"
			if strings.HasPrefix(n, "tcp") || n == "local" {
				r = "closed"
			}
		}
		ops = append(ops, "raw "+n+" "+Hex(msg))
		want = append(want, RawOut(n, msg, r))
	}
	return Client(name, ops...).Expect(want...)
}

// RawOut is the line rpcclient prints for a raw operation.
func RawOut(netid string, msg []byte, result string) string {
	return "raw " + netid + " " + Hex(msg) + ": " + result
}

// SameOr accepts the second daemon's output when it equals the reference's,
// or when every line that differs passes alt(refLine, gotLine). The exit
// status and stderr must still be equal.
func SameOr(alt func(ref, got string) error) func(ref, got Output) error {
	return func(ref, got Output) error {
		if ref.Status() != got.Status() || ref.Stderr != got.Stderr {
			return fmt.Errorf("status or stderr differs: %s vs %s", ref.Status(), got.Status())
		}
		rl, gl := splitLines(ref.Stdout), splitLines(got.Stdout)
		if len(rl) != len(gl) {
			return fmt.Errorf("%d lines instead of %d", len(gl), len(rl))
		}
		for i := range rl {
			if rl[i] == gl[i] {
				continue
			}
			if err := alt(rl[i], gl[i]); err != nil {
				return fmt.Errorf("line %d: %w", i+1, err)
			}
		}
		return nil
	}
}

// IsReply accepts a raw line whose reply is exactly want (on a stream,
// possibly followed by the connection closing).
func IsReply(want []byte) func(ref, got string) error {
	return func(_, got string) error {
		_, res, _ := strings.Cut(got, ": ")
		if res == "reply "+Hex(want) || res == "reply "+Hex(want)+" closed" {
			return nil
		}
		return fmt.Errorf("want reply %s, got %q", Hex(want), res)
	}
}

// IsNoReply accepts a raw line that got no reply and no closed connection.
func IsNoReply(_, got string) error {
	if strings.HasSuffix(got, ": noreply") {
		return nil
	}
	return fmt.Errorf("want noreply, got %q", got)
}

// junkRecord documents a deliberate difference: rpcbind closes a stream
// that carries a record that is not a call; portmapd drops the record and
// serves the stream on, since its framing is sound.
const junkRecord = "rpcbind closes a stream that carries a record that is not a call; " +
	"portmapd drops the record and keeps serving the stream, whose framing is sound"

// IsKeptOpen accepts a raw line where the reference closed the stream and
// the second daemon answered nothing and kept it open (with SameOr, for
// scenarios that also run rpcbind against itself).
func IsKeptOpen(ref, got string) error {
	op, r, _ := strings.Cut(ref, ": ")
	if r == "closed" && got == op+": noreply" {
		return nil
	}
	return fmt.Errorf("want %q, got %q", op+": noreply", got)
}

// KeptOpen checks, line by line, that where the reference closed the
// stream the second daemon answered nothing and kept it open, and that
// every other line is the same: unlike SameOr, closing as the reference
// did fails.
func KeptOpen(ref, got Output) error {
	if ref.Status() != got.Status() || ref.Stderr != got.Stderr {
		return fmt.Errorf("status or stderr differs: %s vs %s", ref.Status(), got.Status())
	}
	rl, gl := splitLines(ref.Stdout), splitLines(got.Stdout)
	if len(rl) != len(gl) {
		return fmt.Errorf("%d lines instead of %d", len(gl), len(rl))
	}
	for i := range rl {
		want := rl[i]
		if op, r, _ := strings.Cut(rl[i], ": "); r == "closed" {
			want = op + ": noreply"
		}
		if gl[i] != want {
			return fmt.Errorf("line %d: want %q, got %q", i+1, want, gl[i])
		}
	}
	return nil
}

// Exactly accepts only the given stdout from the second daemon (with the
// reference's status and stderr): for a deliberate difference that must
// hold.
func Exactly(lines ...string) func(ref, got Output) error {
	want := strings.Join(lines, "\n") + "\n"
	return func(ref, got Output) error {
		if ref.Status() != got.Status() || ref.Stderr != got.Stderr {
			return fmt.Errorf("status or stderr differs: %s vs %s", ref.Status(), got.Status())
		}
		if got.Stdout != want {
			return fmt.Errorf("stdout is not the expected one:\n%s", lineDiff("expected", want, "got", got.Stdout))
		}
		return nil
	}
}
