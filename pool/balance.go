package pool

import (
	"context"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"slices"
	"strconv"

	"github.com/ocsiproxy/ocsiproxy/wire"
)

// clientAddrKey is the context key of the client address (WithClientAddr).
type clientAddrKey struct{}

// WithClientAddr returns ctx carrying the client's address, for the
// groups balanced by ip_hash, in the requests of net/http's type that
// [Pool.RoundTrip] and the [Upgrader] take (a [wire.Request] carries it
// in its ClientAddr): the address access control established (after
// <allow-forward-for>). A request without it is balanced by ip_hash as
// if the key were missing (round robin).
func WithClientAddr(ctx context.Context, addr netip.Addr) context.Context {
	return context.WithValue(ctx, clientAddrKey{}, addr)
}

// clientAddr returns the address WithClientAddr put in ctx.
func clientAddr(ctx context.Context) (netip.Addr, bool) {
	a, ok := ctx.Value(clientAddrKey{}).(netip.Addr)
	return a, ok && a.IsValid()
}

// hashKey returns the key a hashed policy balances req by, and false
// when req has none (no client address, header or cookie): such a
// request is balanced round robin.
func (g *group) hashKey(req *wire.Request) (string, bool) {
	switch g.cfg.Balance {
	case IPHash:
		if req.ClientAddr.IsValid() {
			return ipHashKey(req.ClientAddr), true
		}
	case HashURI:
		return req.Target, true
	case HashHeader:
		if v, ok := req.Header.Lookup(g.cfg.HashName); ok {
			return v, true
		}
	case HashCookie:
		// net/http's cookie parser, given the Cookie fields alone.
		cookies := http.Request{Header: http.Header{"Cookie": req.Header.Values("Cookie")}}
		if c, err := cookies.Cookie(g.cfg.HashName); err == nil {
			return c.Value, true
		}
	}
	return "", false
}

// ipHashKey returns the ip_hash key of a client address, as nginx's
// ip_hash takes it: the first three octets of an IPv4 address (its /24,
// so that the clients of one network, often behind one NAT or a pool of
// proxies, stay on one server) and the whole of an IPv6 address. An
// IPv4-mapped IPv6 address is its IPv4 address.
func ipHashKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return strconv.Itoa(int(b[0])) + "." + strconv.Itoa(int(b[1])) + "." + strconv.Itoa(int(b[2]))
	}
	return a.String()
}

// ring is a consistent-hash ring: every server has pointsPerWeight
// points per unit of weight, placed by hashing its key (its
// "scheme://host:port", an address of its own for a resolved one) and the
// point's number, so a server's points do not depend on the others:
// adding or removing one server moves only the keys on its arcs, about
// 1/N of them.
type ring struct {
	hashes  []uint64 // sorted
	members []int    // index into group.members, per hash
}

// pointsPerWeight is the number of points of a server of weight 1.
const pointsPerWeight = 160

// hash64 is FNV-1a 64, then a finalizer that spreads its low bits (FNV
// alone clusters keys that differ in their last bytes).
func hash64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// newRing places the members of idx (indexes into members) on a ring.
func newRing(members []*member, idx []int) *ring {
	r := &ring{}
	type point struct {
		h uint64
		m int
	}
	var pts []point
	for _, i := range idx {
		m := members[i]
		for j := 0; j < pointsPerWeight*m.srv.Weight; j++ {
			pts = append(pts, point{hash64(m.key + "#" + strconv.Itoa(j)), i})
		}
	}
	slices.SortFunc(pts, func(a, b point) int {
		switch {
		case a.h < b.h:
			return -1
		case a.h > b.h:
			return 1
		}
		return a.m - b.m
	})
	for _, p := range pts {
		r.hashes = append(r.hashes, p.h)
		r.members = append(r.members, p.m)
	}
	return r
}

// walk calls f with the members from key's point clockwise, each once,
// until f returns true; it returns that member's index, or -1.
func (r *ring) walk(key string, n int, f func(i int) bool) int {
	if len(r.hashes) == 0 {
		return -1
	}
	h := hash64(key)
	start, _ := slices.BinarySearch(r.hashes, h)
	var seenBuf [16]bool
	seen := seenBuf[:0]
	if n > len(seenBuf) {
		seen = make([]bool, n)
	} else {
		seen = seenBuf[:n]
	}
	left := n
	for k := 0; k < len(r.hashes) && left > 0; k++ {
		i := r.members[(start+k)%len(r.hashes)]
		if seen[i] {
			continue
		}
		seen[i] = true
		left--
		if f(i) {
			return i
		}
	}
	return -1
}

// choose picks, among the members for which ok is true, the one the
// policy sends the request to (key and hasKey: the hashed policies' key);
// -1 when none may be. Called with g.mu held.
func (g *group) choose(ok func(i int) bool, key string, hasKey bool, backup bool) int {
	b := g.cfg.Balance
	if b.hashed() && hasKey {
		r := g.ring
		if backup {
			r = g.backupRing
		}
		return r.walk(key, len(g.members), ok)
	}
	switch b {
	case First:
		for i := range g.members {
			if ok(i) {
				return i
			}
		}
		return -1
	case LeastConn:
		return g.leastConn(ok)
	case RandomTwo:
		return g.randomTwo(ok)
	}
	return g.smoothRR(ok)
}

// smoothRR is nginx's smooth weighted round robin over the members for
// which ok is true: each gains its weight, the one with the most is
// chosen and loses the total.
func (g *group) smoothRR(ok func(i int) bool) int {
	best, total := -1, 0
	for i, m := range g.members {
		if !ok(i) {
			continue
		}
		m.current += m.srv.Weight
		total += m.srv.Weight
		if best < 0 || m.current > g.members[best].current {
			best = i
		}
	}
	if best >= 0 {
		g.members[best].current -= total
	}
	return best
}

// lessLoaded reports whether a has fewer requests in flight than b
// relative to their weights.
func lessLoaded(a, b *member) bool {
	return a.inflight*int64(b.srv.Weight) < b.inflight*int64(a.srv.Weight)
}

// leastConn picks the member with the fewest requests in flight relative
// to its weight; ties go round, from the member after the last chosen.
func (g *group) leastConn(ok func(i int) bool) int {
	best := -1
	n := len(g.members)
	for k := 0; k < n; k++ {
		i := (g.next + k) % n
		if ok(i) && (best < 0 || lessLoaded(g.members[i], g.members[best])) {
			best = i
		}
	}
	if best >= 0 {
		g.next = best + 1
	}
	return best
}

// randomTwo picks two members at random and returns the less loaded.
func (g *group) randomTwo(ok func(i int) bool) int {
	var candBuf [16]int
	cand := candBuf[:0]
	for i := range g.members {
		if ok(i) {
			cand = append(cand, i)
		}
	}
	switch len(cand) {
	case 0:
		return -1
	case 1:
		return cand[0]
	}
	a := rand.IntN(len(cand))
	b := rand.IntN(len(cand) - 1)
	if b >= a {
		b++
	}
	if lessLoaded(g.members[cand[b]], g.members[cand[a]]) {
		return cand[b]
	}
	return cand[a]
}
