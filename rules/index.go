package rules

import (
	"context"
	"slices"
	"sort"
	"strings"

	"github.com/ocsiproxy/ocsiproxy/stage"
	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// MinIndexed is the length of a run of rules from which it is indexed;
// shorter runs are tried one by one, which is as fast and keeps
// --dry-run traces complete.
const MinIndexed = 16

// keyed is a rule that can be indexed: its regexp only matches subjects
// starting with a known literal prefix, and when it does not match it
// does nothing at all.
type keyed interface {
	stage.Stage
	indexKey() (subj subject, prefix string)
}

func (r *RevProxy) indexKey() (subject, string) { return r.m.subj, r.m.re.LiteralPrefix() }
func (r *Redirect) indexKey() (subject, string) { return r.m.subj, r.m.re.LiteralPrefix() }
func (r *Rewrite) indexKey() (subject, string)  { return r.m.subj, r.m.re.LiteralPrefix() }

// Index runs a run of consecutive rules (<revproxy>, <redirect>,
// <rewrite>) the way running them one by one would, but tries only the
// rules whose regexp's literal prefix starts the request's subject, in
// their document order. A rule that cannot match does nothing, so
// skipping it changes nothing: the first rule that answers is the same.
type Index struct {
	stages []stage.Stage
	sub    prefixIndex // rules matched against the suburl
	full   prefixIndex // rules matched against the fullurl
	always []int       // rules tried for every request (regexp= of <redirect>)
}

// prefixIndex maps literal prefixes to the rules that have them.
type prefixIndex struct {
	byPrefix map[string][]int
	lengths  []int // the distinct prefix lengths, ascending
}

func (p *prefixIndex) add(prefix string, i int) {
	if p.byPrefix == nil {
		p.byPrefix = make(map[string][]int)
	}
	if _, seen := p.byPrefix[prefix]; !seen {
		n := len(prefix)
		k := sort.SearchInts(p.lengths, n)
		if k == len(p.lengths) || p.lengths[k] != n {
			p.lengths = append(p.lengths, 0)
			copy(p.lengths[k+1:], p.lengths[k:])
			p.lengths[k] = n
		}
	}
	p.byPrefix[prefix] = append(p.byPrefix[prefix], i)
}

// candidates appends to dst the rules whose prefix starts s.
func (p *prefixIndex) candidates(dst []int, s string) []int {
	for _, n := range p.lengths {
		if n > len(s) {
			break
		}
		dst = append(dst, p.byPrefix[s[:n]]...)
	}
	return dst
}

// Indexable reports whether s can be part of an indexed run.
func Indexable(s stage.Stage) bool {
	_, ok := s.(keyed)
	return ok
}

// NewIndex indexes stages, which must all be Indexable.
func NewIndex(stages []stage.Stage) *Index {
	x := &Index{stages: stages}
	for i, s := range stages {
		subj, prefix := s.(keyed).indexKey()
		switch subj {
		case subURL:
			x.sub.add(prefix, i)
		case fullURL:
			x.full.add(prefix, i)
		default:
			x.always = append(x.always, i)
		}
	}
	return x
}

// Len returns the number of rules indexed.
func (x *Index) Len() int { return len(x.stages) }

// Run tries the candidate rules in document order until one answers,
// restarts, or ends the run.
func (x *Index) Run(ctx context.Context, st *stage.State) (stage.Result, error) {
	var buf [16]int
	var cand []int
	fresh := true
	for next, k := 0, 0; next < len(x.stages); {
		if st.Answer != nil {
			return stage.Next, nil // every rule of the run is now a no-op
		}
		if fresh {
			// The candidates of the subjects, in document order. They are
			// computed again only after a <rewrite continue="continue">,
			// the one rule that changes the subjects and lets the run go
			// on.
			cand = x.sub.candidates(append(buf[:0], x.always...), st.SubURL())
			if len(x.full.lengths) > 0 {
				// Made only for fullurl rules: it costs an allocation.
				if u, ok := st.FullURL(); ok {
					cand = x.full.candidates(cand, u)
				}
			}
			slices.Sort(cand)
			k, fresh = 0, false
		}
		for k < len(cand) && cand[k] < next {
			k++
		}
		if k == len(cand) {
			if st.Trace != nil {
				st.Tracef(stagePos(x.stages[next]), "%d indexed rules: none can match %q", len(x.stages)-next, strings.TrimSpace(st.SubURL()))
			}
			return stage.Next, nil
		}
		first := cand[k]
		r, err := x.stages[first].Run(ctx, st)
		if err != nil || r != stage.Next {
			return r, err
		}
		if _, ok := x.stages[first].(*Rewrite); ok {
			fresh = true
		}
		next = first + 1
	}
	return stage.Next, nil
}

func stagePos(s stage.Stage) (p xmlconf.Pos) {
	switch r := s.(type) {
	case *RevProxy:
		return r.m.pos
	case *Redirect:
		return r.m.pos
	case *Rewrite:
		return r.m.pos
	}
	return p
}
