package store

import (
	"slices"
	"testing"
)

func visibleIDs(s *Store, caller string) []string {
	var out []string
	for _, m := range s.Visible(caller) {
		out = append(out, m.Owner+"/"+m.ID)
	}
	return out
}

func TestVisibleNeverShowsAnotherTenantsPrivateModel(t *testing.T) {
	s := New(10, 1000, nil)
	for _, m := range []*Model{
		{ID: "secret", Owner: "alice", Size: 1},
		{ID: "shared", Owner: "alice", Size: 1, Public: true},
		{ID: "mine", Owner: "bob", Size: 1},
		{ID: "shared-too", Owner: "bob", Size: 1, Public: true},
		{ID: "secret", Owner: "bob", Size: 1},
		{ID: "shared", Owner: "carol", Size: 1}, // carol's own, shadows alice's public one for her
	} {
		if err := s.Add(m, s.Reserve()); err != nil {
			t.Fatal(err)
		}
	}
	for caller, want := range map[string][]string{
		"alice": {"alice/secret", "alice/shared", "bob/shared-too"},
		"bob":   {"bob/mine", "bob/secret", "alice/shared", "bob/shared-too"},
		"carol": {"carol/shared", "bob/shared-too"},
		"dave":  {"alice/shared", "bob/shared-too"},
	} {
		got := visibleIDs(s, caller)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("Visible(%q) = %v, want %v", caller, got, want)
		}
	}
	if err := s.Delete("alice", "shared"); err != nil {
		t.Fatal(err)
	}
	if got := visibleIDs(s, "dave"); !slices.Equal(got, []string{"bob/shared-too"}) {
		t.Errorf("after alice deleted her public model, dave sees %v", got)
	}
}
