//go:build !linux

package idlepoll

import (
	"errors"
	"time"
)

// Supported reports whether New can make a Poller here.
func Supported() bool { return false }

// A Poller watches idle sockets on one goroutine; not available here.
type Poller struct{}

// New fails here: callers wait on a goroutine per connection.
func New() (*Poller, error) { return nil, errors.New("idlepoll: not supported on this system") }

// Add fails: there is no Poller here.
func (p *Poller) Add(fd int, w Waiter, deadline time.Time, rearm bool) (Key, error) {
	return 0, ErrClosed
}

// Remove reports false: nothing is registered here.
func (p *Poller) Remove(k Key) bool { return false }

// Waiting returns 0.
func (p *Poller) Waiting() int { return 0 }

// Close does nothing.
func (p *Poller) Close() {}
