package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/engine"
)

// reloader counts reloads; each takes delay and fails while fail is set.
type reloader struct {
	calls atomic.Int32
	delay time.Duration
	fail  atomic.Bool
}

func (r *reloader) reload(ctx context.Context, m *Model) (*engine.Session, error) {
	r.calls.Add(1)
	time.Sleep(r.delay)
	if r.fail.Load() {
		return nil, errors.New("sealed copy unreadable")
	}
	return nil, nil
}

func evictStore(maxLoaded int, maxBytes int64, r *reloader) *Store {
	return NewWithOptions(Options{Limits: Limits{MaxLoaded: maxLoaded, MaxBytes: maxBytes}, Reload: r.reload})
}

func evictedIDs(s *Store) string {
	var out []string
	for _, i := range s.List() {
		if i.Evicted {
			out = append(out, i.ID)
		}
	}
	return strings.Join(out, ",")
}

func mustAdd(t *testing.T, s *Store, m *Model) {
	t.Helper()
	if err := s.Add(m, s.ReserveFor(m.Owner)); err != nil {
		t.Fatalf("add %s: %v", m.ID, err)
	}
}

func TestEvictsLeastRecentlyUsedSaved(t *testing.T) {
	r := &reloader{}
	s := evictStore(2, 100, r)
	mustAdd(t, s, &Model{ID: "a", Size: 10, Saved: true})
	mustAdd(t, s, &Model{ID: "b", Size: 10, Saved: true})
	_, rel, err := s.Acquire("", "a") // a is now the more recent
	if err != nil {
		t.Fatal(err)
	}
	rel()
	mustAdd(t, s, &Model{ID: "c", Size: 10, Saved: true})
	if got := evictedIDs(s); got != "b" {
		t.Fatalf("evicted %q, want b (the least recently used)", got)
	}
	if n, used := s.Usage(); n != 3 || used != 20 {
		t.Fatalf("usage %d models, %d bytes; want 3 held, 20 bytes in memory", n, used)
	}
	// b reloads on use, evicting a (now the least recently used).
	_, rel, err = s.Acquire("", "b")
	if err != nil {
		t.Fatal(err)
	}
	rel()
	if r.calls.Load() != 1 || evictedIDs(s) != "a" {
		t.Fatalf("after using b: %d reloads, evicted %q; want 1, a", r.calls.Load(), evictedIDs(s))
	}
	st := s.Tenants()
	if len(st) != 1 || st[0].Evictions != 2 || st[0].Reloads != 1 || st[0].Loaded != 2 || st[0].Models != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestUnsavedNeverEvicted(t *testing.T) {
	r := &reloader{}
	s := evictStore(2, 100, r)
	mustAdd(t, s, &Model{ID: "unsaved", Size: 10})
	mustAdd(t, s, &Model{ID: "saved", Size: 10, Saved: true})
	mustAdd(t, s, &Model{ID: "x", Size: 10})
	if got := evictedIDs(s); got != "saved" {
		t.Fatalf("evicted %q, want saved", got)
	}
	err := s.Add(&Model{ID: "y", Size: 10}, s.Reserve())
	if !errors.Is(err, ErrTooManyModels) || !strings.Contains(err.Error(), "save_model") {
		t.Fatalf("no evictable model: %v, want ErrTooManyModels saying that saving allows eviction", err)
	}
	res := s.Reserve()
	if err := res.Grow(90); !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "save_model") {
		t.Fatalf("bytes with no evictable model: %v", err)
	}
	if got := evictedIDs(s); got != "saved" {
		t.Fatalf("evicted %q after refusals, want saved only", got)
	}
}

func TestModelInUseNotEvicted(t *testing.T) {
	r := &reloader{}
	s := evictStore(1, 100, r)
	mustAdd(t, s, &Model{ID: "a", Size: 10, Saved: true})
	_, rel, err := s.Acquire("", "a")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Add(&Model{ID: "b", Size: 10, Saved: true}, s.Reserve()); !errors.Is(err, ErrTooManyModels) {
		t.Fatalf("adding while the only model runs: %v, want ErrTooManyModels", err)
	}
	rel()
	mustAdd(t, s, &Model{ID: "b", Size: 10, Saved: true})
	if got := evictedIDs(s); got != "a" {
		t.Fatalf("evicted %q, want a once released", got)
	}
}

func TestConcurrentAcquiresReloadOnce(t *testing.T) {
	r := &reloader{delay: 50 * time.Millisecond}
	s := evictStore(1, 100, r)
	mustAdd(t, s, &Model{ID: "a", Size: 10, Saved: true})
	mustAdd(t, s, &Model{ID: "b", Size: 10, Saved: true}) // evicts a
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, rel, err := s.Acquire("", "a")
			if err == nil {
				time.Sleep(5 * time.Millisecond)
				rel()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := r.calls.Load(); n != 1 {
		t.Fatalf("%d reloads for 16 concurrent acquires, want 1", n)
	}
}

func TestReloadFailureReachesWaitersAndRetries(t *testing.T) {
	r := &reloader{delay: 20 * time.Millisecond}
	r.fail.Store(true)
	s := evictStore(1, 100, r)
	mustAdd(t, s, &Model{ID: "a", Size: 10, Saved: true})
	mustAdd(t, s, &Model{ID: "b", Size: 10, Saved: true})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := s.Acquire("", "a"); !errors.Is(err, ErrReload) {
				t.Errorf("waiter: %v, want ErrReload", err)
			}
		}()
	}
	wg.Wait()
	// b was evicted to make room; the failed reload gave its room back.
	if _, used := s.Usage(); used != 0 || s.Loaded() != 0 {
		t.Fatalf("after failed reloads: %d bytes, %d loaded; want 0, 0", used, s.Loaded())
	}
	r.fail.Store(false)
	if _, rel, err := s.Acquire("", "a"); err != nil {
		t.Fatalf("retry after the failure: %v", err)
	} else {
		rel()
	}
}

func TestDeleteWhileEvicted(t *testing.T) {
	r := &reloader{}
	s := evictStore(1, 100, r)
	mustAdd(t, s, &Model{ID: "a", Size: 10, Saved: true})
	mustAdd(t, s, &Model{ID: "b", Size: 10, Saved: true})
	if err := s.Delete("", "a"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Acquire("", "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("acquire after delete: %v", err)
	}
	if r.calls.Load() != 0 {
		t.Fatal("a deleted model was reloaded")
	}
	if n, used := s.Usage(); n != 1 || used != 10 {
		t.Fatalf("usage %d, %d; want 1, 10", n, used)
	}
}

func TestDeleteDuringReload(t *testing.T) {
	r := &reloader{delay: 50 * time.Millisecond}
	s := evictStore(1, 100, r)
	mustAdd(t, s, &Model{ID: "a", Size: 10, Saved: true})
	mustAdd(t, s, &Model{ID: "b", Size: 10, Saved: true})
	done := make(chan error)
	go func() {
		_, rel, err := s.Acquire("", "a")
		if err == nil {
			rel()
		}
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	if err := s.Delete("", "a"); err != nil {
		t.Fatal(err)
	}
	// The model is gone for every request, the one that started the
	// reload included (the reloaded session is closed on its release).
	if err := <-done; !errors.Is(err, ErrNotFound) {
		t.Fatalf("the request that started the reload: %v, want ErrNotFound", err)
	}
	if _, _, err := s.Acquire("", "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if n, used := s.Usage(); n != 1 || used != 0 || s.Loaded() != 0 {
		t.Fatalf("usage %d, %d bytes, %d loaded; want 1 held (b, evicted for a's reload), 0, 0", n, used, s.Loaded())
	}
}

func TestAcquireWaitGivesUp(t *testing.T) {
	r := &reloader{delay: 200 * time.Millisecond}
	s := evictStore(1, 100, r)
	mustAdd(t, s, &Model{ID: "a", Size: 10, Saved: true})
	mustAdd(t, s, &Model{ID: "b", Size: 10, Saved: true})
	go func() {
		if _, rel, err := s.Acquire("", "a"); err == nil {
			rel()
		}
	}()
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.AcquireContext(ctx, "", "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
}

func TestTenantQuotas(t *testing.T) {
	s := NewWithOptions(Options{Limits: Limits{MaxLoaded: 100, MaxBytes: 1000, TenantModels: 2, TenantBytes: 50}})
	mustAdd(t, s, &Model{ID: "a", Owner: "alice", Size: 20})
	mustAdd(t, s, &Model{ID: "b", Owner: "alice", Size: 20})
	if err := s.Add(&Model{ID: "c", Owner: "alice", Size: 1}, s.ReserveFor("alice")); !errors.Is(err, ErrQuota) {
		t.Fatalf("third model: %v, want ErrQuota", err)
	}
	if err := s.Delete("alice", "b"); err != nil {
		t.Fatal(err)
	}
	res := s.ReserveFor("alice")
	if err := res.Grow(31); !errors.Is(err, ErrQuota) {
		t.Fatalf("bytes over quota: %v, want ErrQuota", err)
	}
	if err := res.Grow(30); err != nil {
		t.Fatal(err)
	}
	res.Release()
	// Other owners are not affected, and "" (no authentication) is not capped.
	mustAdd(t, s, &Model{ID: "a", Owner: "bob", Size: 50})
	for _, id := range []string{"x", "y", "z"} {
		mustAdd(t, s, &Model{ID: id, Size: 100})
	}
}

// TestDeleteDuringFailingReload: a reload that fails because the model was
// deleted meanwhile (its sealed copy removed) answers ErrNotFound, not a
// reload failure.
func TestDeleteDuringFailingReload(t *testing.T) {
	r := &reloader{delay: 50 * time.Millisecond}
	r.fail.Store(true)
	s := evictStore(1, 100, r)
	mustAdd(t, s, &Model{ID: "a", Size: 10, Saved: true})
	mustAdd(t, s, &Model{ID: "b", Size: 10, Saved: true})
	done := make(chan error)
	go func() {
		_, _, err := s.Acquire("", "a")
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	if err := s.Delete("", "a"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrNotFound) {
		t.Fatalf("waiter: %v, want ErrNotFound", err)
	}
	if st := s.Tenant(""); st.ReloadFailures != 0 {
		t.Fatalf("%d reload failures counted for a deleted model", st.ReloadFailures)
	}
}

// TestBurstEvictsOwnModelsFirst: a tenant past its share of memory evicts
// its own least recently used models before another tenant's older ones.
func TestBurstEvictsOwnModelsFirst(t *testing.T) {
	r := &reloader{}
	s := evictStore(4, 1000, r)
	mustAdd(t, s, &Model{ID: "b1", Owner: "bob", Size: 10, Saved: true}) // the oldest
	for _, id := range []string{"a1", "a2", "a3", "a4", "a5"} {
		mustAdd(t, s, &Model{ID: id, Owner: "alice", Size: 10, Saved: true})
	}
	if got := evictedIDs(s); got != "a1,a2" {
		t.Fatalf("evicted %q, want alice's a1,a2 (bob's b1 kept)", got)
	}
	// Within its share, a tenant evicts the least recently used of all.
	_, rel, err := s.Acquire("bob", "b1")
	if err != nil {
		t.Fatal(err)
	}
	rel()
	if st := s.Tenant("alice"); st.LoadedBytes != 30 || st.Loaded != 3 {
		t.Fatalf("alice: %+v", st)
	}
	// Without authentication ("") there is one tenant: plain LRU.
	s2 := evictStore(2, 1000, r)
	for _, id := range []string{"x", "y", "z"} {
		mustAdd(t, s2, &Model{ID: id, Size: 10, Saved: true})
	}
	if got := evictedIDs(s2); got != "x" {
		t.Fatalf("evicted %q, want x", got)
	}
}
