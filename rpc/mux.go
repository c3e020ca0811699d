package rpc

// Mux dispatches calls by program, version and procedure. It answers
// PROG_UNAVAIL, PROG_MISMATCH and PROC_UNAVAIL itself, so handlers only see
// calls to procedures they registered.
//
// A Mux is filled before serving starts and read-only afterwards.
type Mux struct {
	progs map[uint32]*program
}

type program struct {
	low, high uint32
	vers      map[uint32][]Handler
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{progs: make(map[uint32]*program)} }

// Handle registers the procedures of (prog, vers); procs[i] serves
// procedure i, and a nil entry is unavailable.
func (m *Mux) Handle(prog, vers uint32, procs []Handler) {
	p := m.progs[prog]
	if p == nil {
		p = &program{low: vers, high: vers, vers: make(map[uint32][]Handler)}
		m.progs[prog] = p
	}
	p.low, p.high = min(p.low, vers), max(p.high, vers)
	p.vers[vers] = procs
}

// ServeRPC dispatches c to its procedure.
func (m *Mux) ServeRPC(w *Reply, c *Call) error {
	p := m.progs[c.Prog]
	if p == nil {
		return ErrProgUnavail
	}
	procs, ok := p.vers[c.Vers]
	if !ok {
		return &ProgMismatchError{Low: p.low, High: p.high}
	}
	if uint64(c.Proc) >= uint64(len(procs)) || procs[c.Proc] == nil {
		return ErrProcUnavail
	}
	return procs[c.Proc].ServeRPC(w, c)
}
