package rpc

// presizeStack grows the calling goroutine's stack to 32 KiB, more than
// serving a call needs, while the goroutine is still shallow.
//
// A goroutine starts with 8 KiB and the runtime doubles the stack when a
// call would overflow it, copying it and, for every frame on it, looking
// the function up in the binary's pc tables. Grown deep in serving, under
// the first calls of a storm, that walk touches the tables of a score of
// functions spread over the binary, and the kernel maps 64 KiB of the
// file around each: a daemon trimmed for idle memory had 1.3-1.8 MiB of
// tables faulted back in at the first connections. Grown here, with two
// frames on the stack, the walk touches next to nothing, and serving never
// grows it again.
//
// For the event loops only, which are few and live as long as their
// listener: a promoted connection's goroutine would pay a copy and 32 KiB
// of stack for each connection, where growing deep costs the tables once
// for the daemon's life (they stay mapped after the first time).
//
//go:noinline
func presizeStack() {
	var pad [presizeFrame]byte
	keepFrame(&pad)
}

// presizeFrame is larger than half of 32 KiB, so that a stack of 16 KiB
// cannot hold it.
const presizeFrame = 20 << 10

//go:noinline
func keepFrame(*[presizeFrame]byte) {}
