//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package pool

import "errors"

// rawSendable says that this system lets a request be written from
// within syscall.RawConn.Read (conn.rawSend): not this one.
const rawSendable = false

var errNoRawSend = errors.New("pool: no raw socket calls on this system")

// sendAndWait is never called here (rawSend is never set).
func (c *conn) sendAndWait(k *call) (werr, rerr error, seen sockState) {
	return errNoRawSend, nil, sockIdle
}

// sendStep is never called here.
func (c *conn) sendStep(fd uintptr) bool { return true }

// readRaw is never called here (fd stays -1).
func (l *limitedConn) readRaw(p []byte) (int, error) { return 0, errNoRawSend }
