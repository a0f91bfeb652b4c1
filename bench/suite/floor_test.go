package main

import (
	"slices"
	"testing"
)

func TestFloorFlags(t *testing.T) {
	tests := []struct {
		name  string
		flags []string
		ok    bool
	}{
		{"floor", nil, true},
		{"floor+reader", []string{"-reader"}, true},
		{"floor+reader+alloc", []string{"-reader", "-alloc", "3072"}, true},
		{"floor+structure", []string{"-reader", "-handoff", "-alloc", "3072"}, true},
		{"floor+all", []string{"-reader", "-handoff", "-deadlines", "-alloc", "3072"}, true},
		{"floor+", nil, false},
		{"floor++reader", nil, false},
		{"floor+reader+", nil, false},
		{"floor+nothing", nil, false},
		{"floorreader", nil, false},
		{"nginx", nil, false},
		{"ocsiproxy", nil, false},
	}
	for _, tt := range tests {
		flags, ok := floorFlags(tt.name)
		if ok != tt.ok || !slices.Equal(flags, tt.flags) {
			t.Errorf("floorFlags(%q) = %q, %v; want %q, %v", tt.name, flags, ok, tt.flags, tt.ok)
		}
	}
}
