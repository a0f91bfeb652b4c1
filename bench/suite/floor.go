package main

import "strings"

// floorParts are the parts a floor target's name may add to "floor",
// each one of bench/floor's flags; "structure" is what ocsiproxy's
// structure costs (its deadlines are moved lazily, not per call), "all"
// every one.
var floorParts = map[string][]string{
	"reader":    {"-reader"},
	"handoff":   {"-handoff"},
	"deadlines": {"-deadlines"},
	"alloc":     {"-alloc", "3072"},
	"structure": {"-reader", "-handoff", "-alloc", "3072"},
	"all":       {"-reader", "-handoff", "-deadlines", "-alloc", "3072"},
}

// floorFlags returns the bench/floor flags of a floor target: "floor",
// or "floor+" and parts of floorParts joined by "+" ("floor+reader+alloc").
func floorFlags(name string) ([]string, bool) {
	rest, ok := strings.CutPrefix(name, "floor")
	if !ok {
		return nil, false
	}
	if rest == "" {
		return nil, true
	}
	if rest, ok = strings.CutPrefix(rest, "+"); !ok {
		return nil, false
	}
	var flags []string
	for part := range strings.SplitSeq(rest, "+") {
		f, ok := floorParts[part]
		if !ok {
			return nil, false
		}
		flags = append(flags, f...)
	}
	return flags, true
}
