// Package nbio reads, writes and peeks at non-blocking sockets with the
// system calls themselves, for the plain-HTTP path's own loops (inside
// syscall.RawConn callbacks, where the socket is known to be in
// non-blocking mode).
//
// On Linux the calls go through syscall.RawSyscall: the scheduler is not
// told of them (no entersyscall and exitsyscall: about 150 instructions a
// call, and the plain path makes five such calls per proxied request:
// the client's read and answer, the backend's look, request and read),
// which is sound only because a call on a non-blocking socket returns
// at once, with EAGAIN when it would block. Never use them on a
// descriptor that may block (a file, a socket in blocking mode): the
// goroutine's P would be held for as long as the call takes. Elsewhere
// they are the syscall package's calls.
//
// Each call is repeated when interrupted by a signal (EINTR); the error
// is a syscall.Errno (no allocation: errno values are small), nil on
// success.
package nbio
