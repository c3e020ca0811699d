package e2e

import (
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"
)

// services starts and stops long-running programs next to each daemon of
// a differential scenario (an RPC service that registers itself, say), as
// Action steps. Both daemons' step sequences run at once, so it keeps one
// process per name and daemon.
type services struct {
	mu    sync.Mutex
	procs map[*Daemon]map[string]*Proc
}

func newServices() *services {
	return &services{procs: map[*Daemon]map[string]*Proc{}}
}

// serviceReadyTimeout bounds how long a service may take to say it is
// ready.
const serviceReadyTimeout = 10 * time.Second

// Start is a step that runs argv in the daemon's namespace in the
// background and waits until its stdout or stderr contains ready. It
// prints "NAME ready", which the step expects from the reference.
func (s *services) Start(name, ready string, argv ...string) Step {
	return Action("start "+name, func(d *Daemon) Output {
		cmd := argv
		if cmd[0] == ClientCmd {
			cmd = append([]string{ClientPath(d.t)}, cmd[1:]...)
		}
		start := time.Now()
		p := d.NS.Start(name, cmd...)
		s.mu.Lock()
		if s.procs[d] == nil {
			s.procs[d] = map[string]*Proc{}
		}
		s.procs[d][name] = p
		s.mu.Unlock()
		for time.Since(start) < serviceReadyTimeout {
			if strings.Contains(p.Stdout(), ready) || strings.Contains(p.Stderr(), ready) {
				return Output{Stdout: name + " ready\n", Took: time.Since(start)}
			}
			if p.Exited() {
				return Output{Exit: -1, Err: fmt.Sprintf("%s exited (%s) before saying %q; stderr:\n%s",
					name, p.ExitStatus(), ready, p.Stderr()), Took: time.Since(start)}
			}
			time.Sleep(10 * time.Millisecond)
		}
		return Output{Exit: -1, Err: fmt.Sprintf("%s did not say %q within %v; stderr:\n%s",
			name, ready, serviceReadyTimeout, p.Stderr()), Took: time.Since(start)}
	}).Expect(name + " ready")
}

// Stop is a step that sends SIGTERM to the service started by Start and
// waits up to 5 seconds for it to exit; it prints how it ended.
func (s *services) Stop(name string) Step {
	return Action("stop "+name, func(d *Daemon) Output {
		start := time.Now()
		s.mu.Lock()
		p := s.procs[d][name]
		s.mu.Unlock()
		if p == nil {
			return Output{Exit: -1, Err: name + " was never started"}
		}
		if err := p.Signal(syscall.SIGTERM); err != nil {
			return Output{Exit: -1, Err: fmt.Sprintf("SIGTERM to %s: %v", name, err)}
		}
		if !p.Wait(5 * time.Second) {
			p.Stop()
			return Output{Exit: -1, Err: name + " ignored SIGTERM for 5s and was killed"}
		}
		return Output{Stdout: name + " exited: " + p.ExitStatus() + "\n", Took: time.Since(start)}
	})
}
