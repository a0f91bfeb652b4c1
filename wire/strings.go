package wire

import "unsafe"

// Strings makes strings out of chunks of memory it allocates, so that the
// short strings of many messages (a head, the values of its fields) cost
// one allocation between them rather than one each. The bytes of a string
// it made are never written again: the strings stay valid for ever, and a
// chunk is collected once no string refers to it (one long-lived string
// keeps its whole chunk). A nil *Strings allocates each string. Not safe
// for concurrent use.
type Strings struct {
	free []byte // the chunk's unused tail: length 0
}

const (
	// stringsChunk is the size of a chunk: about ten usual request
	// heads, without holding much memory per connection.
	stringsChunk = 2048
	// maxShared is the longest string made in a chunk; longer ones get
	// memory of their own (so at most half a chunk is left unused).
	maxShared = stringsChunk / 2
)

// Make returns a string holding the bytes of b.
func (s *Strings) Make(b []byte) string {
	return s.Done(append(s.Room(len(b)), b...))
}

// Room returns an empty slice with room for n bytes: append a string's
// bytes to it, then give the result to Done. Appending more than n bytes
// is allowed (they go to memory of their own).
func (s *Strings) Room(n int) []byte {
	if s == nil || n > maxShared {
		return make([]byte, 0, n)
	}
	if cap(s.free) < n {
		s.free = make([]byte, 0, stringsChunk)
	}
	return s.free[:0:n]
}

// Done returns b, a slice from Room with the string's bytes appended, as
// a string, without copying; b must not be written again.
func (s *Strings) Done(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s != nil && cap(s.free) > 0 && unsafe.SliceData(b) == unsafe.SliceData(s.free) {
		s.free = s.free[len(b):len(b)]
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
