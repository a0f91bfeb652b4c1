//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package pool

// peekSocket cannot look at a socket on this system: it says sockIdle,
// and a request that is not idempotent relies on the retry rules alone
// (it is never sent twice, but may fail on a connection the backend
// closed while it was idle).
func (c *conn) peekSocket() sockState { return sockIdle }

// peekStep is never called here.
func (c *conn) peekStep(fd uintptr) {}
