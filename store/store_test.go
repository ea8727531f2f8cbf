package store

import (
	"errors"
	"sync"
	"testing"
)

func TestCaps(t *testing.T) {
	s := New(2, 100, nil)
	r := s.Reserve()
	if err := r.Grow(60); err != nil {
		t.Fatal(err)
	}
	r2 := s.Reserve()
	if err := r2.Grow(50); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("reservations together over the cap: %v, want ErrNoSpace", err)
	}
	if err := s.Add(&Model{ID: "a", Size: 40}, r); err != nil {
		t.Fatal(err)
	}
	if n, used := s.Usage(); n != 1 || used != 40 {
		t.Fatalf("usage after add = %d models, %d bytes; want 1, 40 (unused reservation returned)", n, used)
	}
	if err := s.Add(&Model{ID: "a", Size: 1}, s.Reserve()); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := s.Add(&Model{ID: "b", Size: 70}, s.Reserve()); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("over bytes: %v", err)
	}
	if err := s.Add(&Model{ID: "b", Size: 10}, s.Reserve()); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(&Model{ID: "c", Size: 1}, s.Reserve()); !errors.Is(err, ErrTooManyModels) {
		t.Fatalf("over count: %v", err)
	}
	if err := s.Delete("", "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("", "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if n, used := s.Usage(); n != 1 || used != 10 {
		t.Fatalf("usage after delete = %d, %d; want 1, 10", n, used)
	}
	r.Release()
	r2.Release()
	if _, used := s.Usage(); used != 10 {
		t.Fatalf("releasing consumed reservations changed usage to %d", used)
	}
}

func TestAcquireKeepsDeletedModel(t *testing.T) {
	s := New(4, 1000, nil)
	if err := s.Add(&Model{ID: "m", Size: 1}, s.Reserve()); err != nil {
		t.Fatal(err)
	}
	m, release, err := s.Acquire("", "m")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("", "m"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Acquire("", "m"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("acquire after delete: %v", err)
	}
	if m.ID != "m" {
		t.Fatal("held model changed")
	}
	release()
	release() // idempotent
	s.mu.Lock()
	refs := m.refs
	s.mu.Unlock()
	if refs != 0 {
		t.Fatalf("refs = %d after release", refs)
	}
}

func TestConcurrentReservations(t *testing.T) {
	s := New(1000, 1000, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := 0
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := s.Reserve()
			if r.Grow(100) == nil {
				mu.Lock()
				granted++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if granted != 10 {
		t.Fatalf("granted %d reservations of 100 under a 1000 cap, want 10", granted)
	}
}

// TestAddIfRefusedLeavesNothing: an add whose condition fails (an upload
// whose client cancelled) changes nothing, so a later delete's NOT_FOUND is
// the truth.
func TestAddIfRefusedLeavesNothing(t *testing.T) {
	s := New(4, 1000, nil)
	r := s.Reserve()
	if err := r.Grow(10); err != nil {
		t.Fatal(err)
	}
	cancelled := errors.New("cancelled")
	if err := s.AddIf(&Model{ID: "m", Size: 10}, r, func() error { return cancelled }); !errors.Is(err, cancelled) {
		t.Fatalf("AddIf = %v, want the condition's error", err)
	}
	if s.Has("", "m") {
		t.Fatal("refused model was added")
	}
	r.Release()
	if n, used := s.Usage(); n != 0 || used != 0 {
		t.Fatalf("usage %d models, %d bytes after a refused add", n, used)
	}
}

// TestClaim: an id being uploaded is nobody else's, is not visible, and
// becomes the model's when the claimer adds it.
func TestClaim(t *testing.T) {
	s := New(4, 1000, nil)
	if err := s.Claim("", "m"); err != nil {
		t.Fatal(err)
	}
	if err := s.Claim("", "m"); !errors.Is(err, ErrExists) {
		t.Fatalf("second claim: %v", err)
	}
	if _, _, err := s.Acquire("", "m"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a claimed id is visible: %v", err)
	}
	if err := s.Delete("", "m"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a claimed id can be deleted: %v", err)
	}
	if err := s.Add(&Model{ID: "m", Size: 1}, s.Reserve()); err != nil {
		t.Fatal(err)
	}
	s.Unclaim("", "m") // after Add: a no-op
	if err := s.Claim("", "m"); !errors.Is(err, ErrExists) {
		t.Fatalf("claim of a loaded id: %v", err)
	}
	s.Unclaim("", "x")
	if err := s.Claim("", "x"); err != nil {
		t.Fatalf("claim after an unclaim: %v", err)
	}
}

// Ids are per owner; public models are also found by everyone, and their
// ids are unique among public models.
func TestNamespaces(t *testing.T) {
	s := New(10, 1000, nil)
	add := func(owner, id string, public bool) error {
		return s.Add(&Model{ID: id, Owner: owner, Public: public, Size: 1}, s.Reserve())
	}
	for _, m := range []struct {
		owner, id string
		public    bool
	}{{"alice", "m", false}, {"bob", "m", false}, {"alice", "pub", true}} {
		if err := add(m.owner, m.id, m.public); err != nil {
			t.Fatalf("add %s/%s: %v", m.owner, m.id, err)
		}
	}
	if err := add("bob", "pub", true); !errors.Is(err, ErrExists) {
		t.Fatalf("another owner's public id: %v, want ErrExists", err)
	}
	if err := add("bob", "pub", false); err != nil {
		t.Fatalf("a private model under another owner's public id: %v", err)
	}
	if err := s.Claim("alice", "m"); !errors.Is(err, ErrExists) {
		t.Fatalf("claiming one's own loaded id: %v", err)
	}
	if err := s.Claim("carol", "m"); err != nil {
		t.Fatalf("claiming an id only others use: %v", err)
	}
	s.Unclaim("carol", "m")
	for _, c := range []struct {
		caller, id, owner string // owner "" = not found
	}{
		{"alice", "m", "alice"}, {"bob", "m", "bob"}, {"carol", "m", ""},
		{"carol", "pub", "alice"}, {"alice", "pub", "alice"}, {"bob", "pub", "bob"}, // own first
	} {
		m, release, err := s.Acquire(c.caller, c.id)
		if c.owner == "" {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s runs %s: %v, want ErrNotFound", c.caller, c.id, err)
			}
			continue
		}
		if err != nil || m.Owner != c.owner {
			t.Errorf("%s runs %s: %v, %+v; want %s's", c.caller, c.id, err, m, c.owner)
			continue
		}
		release()
	}
	if err := s.Delete("carol", "pub"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting another's public model: %v, want ErrNotFound", err)
	}
	if err := s.Delete("alice", "pub"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Acquire("carol", "pub"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a deleted public model is still found: %v", err)
	}
	if err := add("bob", "pub2", true); err != nil {
		t.Fatal(err)
	}
	if got := len(s.List()); got != 4 {
		t.Fatalf("List has %d models, want 4", got)
	}
}
