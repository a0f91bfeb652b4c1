package accesscontrol

import (
	"testing"

	"github.com/ocsiproxy/ocsiproxy/stage"
)

// BenchmarkIf measures a typical rule: a proxy check, the X-Forwarded-For
// walk, and an address test on the established client.
func BenchmarkIf(b *testing.B) {
	stages := compile(b, `<if><ip value="192.0.2.0/24"/><then><allow-forward-for proxies="10.0.0.0/8"/></then></if>`+
		`<if><and><ip value="198.51.100.0/24"/><path regexp="admin/.*"/></and><then><forbidden/></then><else><ifnotfound code="40[34]"/></else></if>`)
	st := newState("X-Forwarded-For: 6.6.6.6, 198.51.100.1, 10.0.0.1")
	b.ReportAllocs()
	for b.Loop() {
		st.Client = st.Peer
		if _, err := stage.RunBlock(b.Context(), st, stages); err != nil {
			b.Fatal(err)
		}
	}
}
