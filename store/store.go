// Package store keeps the models a server holds: it owns their engine
// sessions, enforces the caps on their count and bytes (uploads in
// progress included), keeps a model alive while requests use it, and
// evicts idle saved models from memory when room is needed, reloading them
// from sealed storage on their next use.
//
// Model ids are per owner: each owner (authenticated subject) has a
// namespace of its own, so one owner can neither take nor see another's
// ids. Public models are also found by id by everyone, so their ids are
// unique among public models. With authentication off every model has the
// owner "" and there is one namespace.
//
// Memory: the models loaded in memory (and the bytes of uploads and
// reloads in progress) are capped by Limits.MaxLoaded and Limits.MaxBytes.
// When a load would pass a cap, the least recently used models that can be
// reloaded (saved, not in use, not being reloaded) are evicted: their
// session is closed and they stay known, to be reloaded (once, however many
// requests wait) by Acquire. Models that were not saved are never evicted.
package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/blindfold-ai/blindfold/engine"
)

// Errors returned by Store. They are wrapped with details.
var (
	// ErrExists means a model with that id is loaded already.
	ErrExists = errors.New("model id already in use")
	// ErrNotFound means no model has that id.
	ErrNotFound = errors.New("model not found")
	// ErrTooManyModels means the cap on models (loaded in memory, or held
	// in all) is reached and no model can be evicted.
	ErrTooManyModels = errors.New("too many models loaded")
	// ErrNoSpace means the cap on model bytes in memory would be exceeded
	// and evicting every model that can be evicted would not make room.
	ErrNoSpace = errors.New("model memory cap reached")
	// ErrQuota means the owner's own cap on models or bytes is reached.
	ErrQuota = errors.New("owner's model quota reached")
	// ErrReload wraps the reload function's error when an evicted model
	// cannot be loaded again.
	ErrReload = errors.New("evicted model could not be reloaded")
)

// Model is a model the store holds. Its fields other than Session do not
// change after Add.
type Model struct {
	ID   string
	Hash [32]byte // SHA-256 of the model bytes
	Size int64    // model size in bytes
	// Session is the model's ONNX Runtime session while the model is in
	// memory, nil while it is evicted. A caller that acquired the model
	// may use it until it releases the model.
	Session *engine.Session
	Loaded  time.Time
	// Owner is the subject that uploaded the model ("" when the server
	// runs without authentication).
	Owner string
	// Public lets any authenticated subject run the model.
	Public bool
	// Saved means a sealed copy is on disk, so the model can be evicted
	// from memory and reloaded.
	Saved bool
	// Inputs and Outputs are the model's tensor specs, known whether or
	// not the model is in memory.
	Inputs, Outputs []engine.TensorSpec

	refs     int     // guarded by Store.mu
	deleted  bool    // guarded by Store.mu
	resident bool    // counted in memory (loaded or being reloaded), guarded by Store.mu
	lastUse  uint64  // Store.tick at the last Acquire, guarded by Store.mu
	reload   *reload // the reload in progress, guarded by Store.mu
}

// reload is one reload of an evicted model, shared by every request that
// waits for it.
type reload struct {
	done chan struct{}
	err  error // set before done closes
}

// Limits are a store's caps. A zero tenant cap means none.
type Limits struct {
	// MaxLoaded caps the models in memory at once.
	MaxLoaded int
	// MaxBytes caps the bytes of models in memory plus reservations.
	MaxBytes int64
	// MaxModels caps the models held, in memory or evicted (0: no cap
	// beyond MaxLoaded for models that cannot be evicted).
	MaxModels int
	// TenantModels caps the models one owner holds, in memory or evicted.
	// The owner "" (no authentication) is not capped.
	TenantModels int
	// TenantBytes caps the bytes of one owner's models, in memory or
	// evicted, plus its reservations. The owner "" is not capped.
	TenantBytes int64
}

// ReloadFunc loads an evicted model's session again from its sealed copy.
// ctx carries no cancellation of the request that started the reload
// (other requests may wait for it too).
type ReloadFunc func(ctx context.Context, m *Model) (*engine.Session, error)

// Options configure NewWithOptions.
type Options struct {
	Limits Limits
	// Reload reloads evicted models. Nil: models are never evicted.
	Reload ReloadFunc
	// OnCloseErr, if not nil, receives errors from closing sessions.
	OnCloseErr func(error)
	// OnEvict, if not nil, is told of each eviction (outside the store's
	// lock).
	OnEvict func(Info)
}

// TenantStats are one owner's counts.
type TenantStats struct {
	// Owner is the subject ("" without authentication).
	Owner string
	// Models is the models held, in memory or evicted; Loaded those in
	// memory, LoadedBytes their bytes.
	Models, Loaded int
	LoadedBytes    int64
	// Bytes is the bytes of the owner's models and reservations.
	Bytes int64
	// Evictions, Reloads and ReloadFailures count events since start.
	Evictions, Reloads, ReloadFailures uint64
	// ReloadTime is the time all reloads took together.
	ReloadTime time.Duration
}

// Store holds models. Safe for concurrent use.
type Store struct {
	lim      Limits
	reloadFn ReloadFunc
	closeErr func(error)
	onEvict  func(Info)

	mu      sync.Mutex
	models  map[key]*Model
	public  map[string]*Model // public models by id
	claimed map[key]bool      // ids of uploads in progress
	used    int64             // bytes of models in memory plus reservations
	loaded  int               // models in memory (or being reloaded)
	tick    uint64            // counts Acquire calls, for least-recently-used order
	tenants map[string]*TenantStats
}

// key names a model: its id within its owner's namespace.
type key struct{ owner, id string }

func keyOf(m *Model) key { return key{m.Owner, m.ID} }

// New returns an empty store that holds at most maxModels models and
// maxBytes bytes of models and reservations together, and never evicts.
// onCloseErr, if not nil, receives errors from closing sessions of deleted
// models.
func New(maxModels int, maxBytes int64, onCloseErr func(error)) *Store {
	return NewWithOptions(Options{Limits: Limits{MaxLoaded: maxModels, MaxBytes: maxBytes}, OnCloseErr: onCloseErr})
}

// NewWithOptions returns an empty store.
func NewWithOptions(o Options) *Store {
	return &Store{lim: o.Limits, reloadFn: o.Reload, closeErr: o.OnCloseErr, onEvict: o.OnEvict,
		models: map[key]*Model{}, public: map[string]*Model{}, claimed: map[key]bool{}, tenants: map[string]*TenantStats{}}
}

// tenant returns owner's counts, made on first use. Called with mu held.
func (s *Store) tenant(owner string) *TenantStats {
	t := s.tenants[owner]
	if t == nil {
		t = &TenantStats{Owner: owner}
		s.tenants[owner] = t
	}
	return t
}

// evicted is what makeRoomLocked took out of memory: sessions to close and
// models to report, once the lock is released.
type evicted struct {
	sessions []*engine.Session
	infos    []Info
}

// finish closes the evicted sessions and reports the evictions. Called
// without the lock.
func (s *Store) finish(ev evicted) {
	for i, sess := range ev.sessions {
		if sess != nil {
			if err := sess.Close(); err != nil && s.closeErr != nil {
				s.closeErr(fmt.Errorf("closing evicted model %q: %w", ev.infos[i].ID, err))
			}
		}
		if s.onEvict != nil {
			s.onEvict(ev.infos[i])
		}
	}
}

// makeRoomLocked evicts least-recently-used models until bytes more bytes
// and slots more models of owner fit in memory. It returns what it evicted
// (to be finished without the lock) and, when room cannot be made, an
// error that says what holds the memory. Called with mu held.
func (s *Store) makeRoomLocked(owner string, bytes int64, slots int) (evicted, error) {
	var ev evicted
	for s.used+bytes > s.lim.MaxBytes || s.loaded+slots > s.lim.MaxLoaded {
		v := s.victimLocked(owner, bytes, slots)
		if v == nil {
			return ev, s.noRoomLocked(bytes, slots)
		}
		ev.sessions = append(ev.sessions, v.Session)
		ev.infos = append(ev.infos, infoOf(v))
		v.Session = nil
		v.resident = false
		s.used -= v.Size
		s.loaded--
		t := s.tenant(v.Owner)
		t.Loaded--
		t.LoadedBytes -= v.Size
		t.Evictions++
	}
	return ev, nil
}

// victimLocked returns the model to evict so that owner may load bytes
// more bytes and slots more models, or nil when none can be evicted. It is
// the least recently used model that can be evicted (saved, not in use, not
// being reloaded), except that an authenticated owner who would pass its
// share of memory (the caps divided among the owners with models in
// memory) evicts its own models first: one tenant's burst of uploads and
// reloads then churns its own models, not the others'.
func (s *Store) victimLocked(owner string, bytes int64, slots int) *Model {
	if s.reloadFn == nil {
		return nil
	}
	if owner != "" && s.overShareLocked(owner, bytes, slots) {
		if v := s.lruLocked(func(m *Model) bool { return m.Owner == owner }); v != nil {
			return v
		}
	}
	return s.lruLocked(func(*Model) bool { return true })
}

// overShareLocked reports whether owner, with bytes and slots more, would
// hold more than its share of the memory caps.
func (s *Store) overShareLocked(owner string, bytes int64, slots int) bool {
	active := 0
	for o, t := range s.tenants {
		if t.Loaded > 0 || o == owner {
			active++
		}
	}
	t := s.tenant(owner)
	return t.LoadedBytes+bytes > s.lim.MaxBytes/int64(active) || t.Loaded+slots > s.lim.MaxLoaded/active
}

// lruLocked returns the least recently used evictable model that ok
// accepts, or nil.
func (s *Store) lruLocked(ok func(*Model) bool) *Model {
	var v *Model
	for _, m := range s.models {
		if !m.resident || !m.Saved || m.refs > 0 || m.reload != nil || !ok(m) {
			continue
		}
		if v == nil || m.lastUse < v.lastUse {
			v = m
		}
	}
	return v
}

// noRoomLocked describes why bytes and slots do not fit.
func (s *Store) noRoomLocked(bytes int64, slots int) error {
	var unsaved, inUse int64
	var nUnsaved, nInUse int
	for _, m := range s.models {
		switch {
		case !m.resident:
		case !m.Saved:
			unsaved += m.Size
			nUnsaved++
		default:
			inUse += m.Size
			nInUse++
		}
	}
	detail := fmt.Sprintf("%d models (%d bytes) in memory were not saved and cannot be evicted (uploading with save_model lets the server evict idle models to sealed storage); %d saved models (%d bytes) are in use or being loaded", nUnsaved, unsaved, nInUse, inUse)
	if s.used+bytes > s.lim.MaxBytes {
		return fmt.Errorf("%w: %d bytes in memory or arriving, cap %d, %d more needed; %s", ErrNoSpace, s.used, s.lim.MaxBytes, bytes, detail)
	}
	return fmt.Errorf("%w: %d of %d in memory; %s", ErrTooManyModels, s.loaded, s.lim.MaxLoaded, detail)
}

// Reservation is room taken against the memory cap (and its owner's byte
// quota) while a model's bytes arrive, before the model exists.
type Reservation struct {
	s     *Store
	owner string
	mu    sync.Mutex
	size  int64
}

// Reserve returns an empty reservation of the owner "".
func (s *Store) Reserve() *Reservation { return &Reservation{s: s} }

// ReserveFor returns an empty reservation counted against owner's quota.
func (s *Store) ReserveFor(owner string) *Reservation { return &Reservation{s: s, owner: owner} }

// Grow takes n more bytes, evicting idle saved models if needed. It fails
// with ErrQuota when the owner's byte quota would be passed and with
// ErrNoSpace when no room can be made, taking nothing (models evicted on
// the way stay evicted).
func (r *Reservation) Grow(n int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.s
	s.mu.Lock()
	if n < 0 {
		s.mu.Unlock()
		return fmt.Errorf("%w: negative size", ErrNoSpace)
	}
	t := s.tenant(r.owner)
	if r.owner != "" && s.lim.TenantBytes > 0 && t.Bytes+n > s.lim.TenantBytes {
		s.mu.Unlock()
		return fmt.Errorf("%w: your models and uploads take %d bytes, your cap is %d", ErrQuota, t.Bytes, s.lim.TenantBytes)
	}
	ev, err := s.makeRoomLocked(r.owner, n, 0)
	if err == nil {
		s.used += n
		t.Bytes += n
		r.size += n
	}
	s.mu.Unlock()
	s.finish(ev)
	return err
}

// Size returns the bytes reserved.
func (r *Reservation) Size() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.size
}

// Release gives the reserved bytes back. Safe to call more than once and
// after the reservation was consumed by Add.
func (r *Reservation) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.mu.Lock()
	r.s.used -= r.size
	r.s.tenant(r.owner).Bytes -= r.size
	r.s.mu.Unlock()
	r.size = 0
}

// Claim reserves id in owner's namespace for an upload in progress: until
// Unclaim, or until the claimer adds the model, no one else can upload
// under it. It fails with ErrExists when owner has a model with id or
// claimed it. A claimed id is not a model: runs and deletes of it find
// nothing.
func (s *Store) Claim(owner, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key{owner, id}
	if _, ok := s.models[k]; ok || s.claimed[k] {
		return fmt.Errorf("%w: %q", ErrExists, id)
	}
	s.claimed[k] = true
	return nil
}

// Unclaim releases a claim (a no-op once the model was added).
func (s *Store) Unclaim(owner, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.claimed, key{owner, id})
}

// Has reports whether owner has a model with id (in memory or evicted).
func (s *Store) Has(owner, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.models[key{owner, id}]
	return ok
}

// Fits reports whether a model of size bytes would fit in memory now
// without evicting anything.
func (s *Store) Fits(size int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used+size <= s.lim.MaxBytes && s.loaded < s.lim.MaxLoaded
}

// Add stores m, converting res (which must hold at least m.Size bytes) into
// the model's share of the caps. On error nothing changes and the caller
// still owns m.Session and res.
func (s *Store) Add(m *Model, res *Reservation) error { return s.AddIf(m, res, nil) }

// AddIf is Add, made only if ok (when not nil) returns nil at the moment of
// adding, inside the store's lock. An upload passes its stream context's Err,
// so that a client that cancelled, and then deletes the model to be sure,
// never leaves the model behind: either the add came first and the delete
// finds the model, or the cancel came first and the add is refused.
//
// When m does not fit in memory, idle saved models are evicted to make
// room.
func (s *Store) AddIf(m *Model, res *Reservation, ok func() error) error {
	res.mu.Lock()
	defer res.mu.Unlock()
	s.mu.Lock()
	ev, err := s.addLocked(m, res, ok, false)
	s.mu.Unlock()
	s.finish(ev)
	return err
}

func (s *Store) addLocked(m *Model, res *Reservation, ok func() error, asEvicted bool) (evicted, error) {
	if ok != nil {
		if err := ok(); err != nil {
			return evicted{}, err
		}
	}
	if res.owner != m.Owner && res.size > 0 {
		return evicted{}, fmt.Errorf("store: reservation of owner %q used for a model of %q", res.owner, m.Owner)
	}
	k := keyOf(m)
	if _, ok := s.models[k]; ok {
		return evicted{}, fmt.Errorf("%w: %q", ErrExists, m.ID)
	}
	if p, ok := s.public[m.ID]; ok && m.Public && p.Owner != m.Owner {
		return evicted{}, fmt.Errorf("%w: %q is the id of another owner's public model", ErrExists, m.ID)
	}
	// A claimed id is the claimer's: Add is how the claimer completes it.
	// (Callers that did not claim, such as loading sealed models at start,
	// run before any upload.)
	if s.lim.MaxModels > 0 && len(s.models) >= s.lim.MaxModels {
		return evicted{}, fmt.Errorf("%w: the server holds %d models, its cap", ErrTooManyModels, len(s.models))
	}
	t := s.tenant(m.Owner)
	if m.Owner != "" && s.lim.TenantModels > 0 && t.Models >= s.lim.TenantModels {
		return evicted{}, fmt.Errorf("%w: you hold %d models, your cap is %d", ErrQuota, t.Models, s.lim.TenantModels)
	}
	extra := m.Size - res.size // bytes the reservation does not cover
	if m.Owner != "" && s.lim.TenantBytes > 0 && extra > 0 && t.Bytes+extra > s.lim.TenantBytes {
		return evicted{}, fmt.Errorf("%w: your models and uploads take %d bytes, your cap is %d", ErrQuota, t.Bytes, s.lim.TenantBytes)
	}
	var ev evicted
	if !asEvicted {
		var err error
		if ev, err = s.makeRoomLocked(m.Owner, max(extra, 0), 1); err != nil {
			return ev, err
		}
		s.used += extra
		s.loaded++
		m.resident = true
		t.Loaded++
		t.LoadedBytes += m.Size
	} else {
		s.used -= res.size
		m.resident = false
	}
	t.Bytes += extra
	t.Models++
	res.size = 0
	m.refs, m.deleted, m.reload = 0, false, nil
	s.tick++
	m.lastUse = s.tick
	s.models[k] = m
	if m.Public {
		s.public[m.ID] = m
	}
	delete(s.claimed, k)
	return ev, nil
}

// AddEvicted stores a saved model without loading it (m.Session is
// ignored and set to nil): it takes no memory until its first Acquire
// reloads it. It checks the caps on models held and the owner's quotas
// like Add.
func (s *Store) AddEvicted(m *Model) error {
	if !m.Saved {
		return fmt.Errorf("store: model %q has no saved copy to reload", m.ID)
	}
	m.Session = nil
	res := s.ReserveFor(m.Owner)
	s.mu.Lock()
	_, err := s.addLocked(m, res, nil, true)
	s.mu.Unlock()
	return err
}

// Acquire is AcquireContext without a context: a reload it waits for
// cannot be given up.
func (s *Store) Acquire(caller, id string) (*Model, func(), error) {
	return s.AcquireContext(context.Background(), caller, id)
}

// AcquireContext returns the model that caller may use under id: caller's
// own model with that id, else the public model with that id, with its
// Session loaded: an evicted model is reloaded first (one reload, however
// many requests wait for it; a request whose ctx ends stops waiting). It
// also returns a release function that must be called when the caller no
// longer uses the model; until then the model is not evicted, and a model
// deleted meanwhile stays usable. A model that exists but that caller may
// not use is reported as ErrNotFound, like one that does not exist. A
// reload that fails returns an error that wraps ErrReload, or ErrNoSpace or
// ErrTooManyModels when no room could be made for it.
func (s *Store) AcquireContext(ctx context.Context, caller, id string) (*Model, func(), error) {
	s.mu.Lock()
	m, ok := s.models[key{caller, id}]
	if !ok {
		m, ok = s.public[id]
	}
	if !ok {
		s.mu.Unlock()
		return nil, nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	m.refs++
	s.tick++
	m.lastUse = s.tick
	var once sync.Once
	release := func() { once.Do(func() { s.release(m) }) }
	for {
		if m.resident && m.reload == nil {
			s.mu.Unlock()
			return m, release, nil
		}
		if m.deleted {
			s.mu.Unlock()
			release()
			return nil, nil, fmt.Errorf("%w: %q", ErrNotFound, id)
		}
		if r := m.reload; r != nil {
			s.mu.Unlock()
			select {
			case <-r.done:
			case <-ctx.Done():
				release()
				return nil, nil, ctx.Err()
			}
			if r.err != nil {
				release()
				return nil, nil, r.err
			}
			s.mu.Lock()
			continue
		}
		if err := s.reloadLocked(ctx, m); err != nil {
			s.mu.Unlock()
			release()
			return nil, nil, err
		}
	}
}

// reloadLocked reloads evicted m, unlocking mu meanwhile; it returns with
// mu held.
func (s *Store) reloadLocked(ctx context.Context, m *Model) error {
	if s.reloadFn == nil {
		return fmt.Errorf("%w: %q: the store cannot reload models", ErrReload, m.ID)
	}
	ev, err := s.makeRoomLocked(m.Owner, m.Size, 1)
	if err != nil {
		s.mu.Unlock()
		s.finish(ev)
		s.mu.Lock()
		return fmt.Errorf("no room to reload model %q: %w", m.ID, err)
	}
	t := s.tenant(m.Owner)
	s.used += m.Size
	s.loaded++
	t.Loaded++
	t.LoadedBytes += m.Size
	m.resident = true
	r := &reload{done: make(chan struct{})}
	m.reload = r
	s.mu.Unlock()
	s.finish(ev)
	start := time.Now()
	sess, err := s.reloadFn(context.WithoutCancel(ctx), m)
	took := time.Since(start)
	s.mu.Lock()
	m.reload = nil
	t.ReloadTime += took
	if err != nil {
		if m.resident { // else a delete took it out already
			s.used -= m.Size
			s.loaded--
			t.Loaded--
			t.LoadedBytes -= m.Size
			m.resident = false
		}
		if m.deleted {
			// Deleted meanwhile (its sealed copy may be gone already):
			// for every waiter the model is simply not there.
			r.err = fmt.Errorf("%w: %q", ErrNotFound, m.ID)
			close(r.done)
			return r.err
		}
		t.ReloadFailures++
		r.err = fmt.Errorf("%w: %q: %w", ErrReload, m.ID, err)
		close(r.done)
		return r.err
	}
	m.Session = sess
	t.Reloads++
	close(r.done)
	return nil
}

func (s *Store) release(m *Model) {
	s.mu.Lock()
	m.refs--
	closeNow := m.deleted && m.refs == 0
	s.mu.Unlock()
	if closeNow {
		s.closeSession(m)
	}
}

func (s *Store) closeSession(m *Model) {
	if m.Session == nil {
		return
	}
	if err := m.Session.Close(); err != nil && s.closeErr != nil {
		s.closeErr(fmt.Errorf("closing model %q: %w", m.ID, err))
	}
}

// Delete removes owner's model with id. Its session closes once the last
// request using it is done; its bytes leave the caps at once.
func (s *Store) Delete(owner, id string) error { return s.DeleteIf(owner, id, nil) }

// DeleteIf removes owner's model with id if allow (when not nil) returns
// nil for it; otherwise it returns allow's error and keeps the model. The
// check and the removal are one atomic step. Only the owner's namespace is
// searched: another owner's model, public or not, is ErrNotFound. An
// evicted model is removed the same way (and a reload in progress for it
// is used only by the requests already waiting).
func (s *Store) DeleteIf(owner, id string, allow func(*Model) error) error {
	s.mu.Lock()
	k := key{owner, id}
	m, ok := s.models[k]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if allow != nil {
		if err := allow(m); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	delete(s.models, k)
	if s.public[id] == m {
		delete(s.public, id)
	}
	t := s.tenant(m.Owner)
	if m.resident {
		s.used -= m.Size
		s.loaded--
		t.Loaded--
		t.LoadedBytes -= m.Size
		m.resident = false
	}
	t.Models--
	t.Bytes -= m.Size
	m.deleted = true
	closeNow := m.refs == 0
	s.mu.Unlock()
	if closeNow {
		s.closeSession(m)
	}
	return nil
}

// Info is a summary of a model.
type Info struct {
	ID     string
	Owner  string
	Public bool
	Hash   [32]byte
	Size   int64
	Loaded time.Time
	// Saved means a sealed copy is on disk.
	Saved bool
	// Evicted means the model is not in memory now; its next run
	// reloads it from its sealed copy.
	Evicted bool
}

func infoOf(m *Model) Info {
	return Info{ID: m.ID, Owner: m.Owner, Public: m.Public, Hash: m.Hash, Size: m.Size, Loaded: m.Loaded, Saved: m.Saved, Evicted: !m.resident}
}

// List returns the models held (in memory or evicted), sorted by owner,
// then id.
func (s *Store) List() []Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Info, 0, len(s.models))
	for _, m := range s.models {
		out = append(out, infoOf(m))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Owner != out[j].Owner {
			return out[i].Owner < out[j].Owner
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Visible returns the models caller may use, sorted by id: caller's own
// models, and the public models of others. Where caller owns a model with
// the id of another's public model, only caller's own is returned, as
// Acquire would find it. Nothing is acquired: the models may be deleted
// at any time, and only their fields set before Add may be read.
func (s *Store) Visible(caller string) []*Model {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Model
	for k, m := range s.models {
		if k.owner == caller {
			out = append(out, m)
		}
	}
	for id, m := range s.public {
		if m.Owner == caller {
			continue // listed above
		}
		if _, shadowed := s.models[key{caller, id}]; shadowed {
			continue
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Usage returns the number of models held (in memory or evicted) and the
// bytes in memory (models loaded, being reloaded, and reservations).
func (s *Store) Usage() (models int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.models), s.used
}

// Loaded returns the number of models in memory (or being reloaded).
func (s *Store) Loaded() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loaded
}

// Tenants returns every owner's counts, sorted by owner. Owners that hold
// nothing and never had an eviction or reload are left out.
func (s *Store) Tenants() []TenantStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TenantStats, 0, len(s.tenants))
	for _, t := range s.tenants {
		if t.Models == 0 && t.Bytes == 0 && t.Evictions == 0 && t.Reloads == 0 && t.ReloadFailures == 0 {
			continue
		}
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Owner < out[j].Owner })
	return out
}

// Tenant returns owner's counts.
func (s *Store) Tenant(owner string) TenantStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.tenants[owner]; t != nil {
		return *t
	}
	return TenantStats{Owner: owner}
}

// Close deletes every model and closes every session (waiting for requests
// that still use them only through their release).
func (s *Store) Close() {
	s.mu.Lock()
	keys := make([]key, 0, len(s.models))
	for k := range s.models {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	for _, k := range keys {
		_ = s.Delete(k.owner, k.id)
	}
}
