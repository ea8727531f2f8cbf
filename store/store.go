// Package store keeps the models a server has loaded: it owns their engine
// sessions, enforces the caps on their count and total bytes (uploads in
// progress included), and keeps a model alive while requests use it.
//
// Model ids are per owner: each owner (authenticated subject) has a
// namespace of its own, so one owner can neither take nor see another's
// ids. Public models are also found by id by everyone, so their ids are
// unique among public models. With authentication off every model has the
// owner "" and there is one namespace.
package store

import (
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
	// ErrTooManyModels means the cap on loaded models is reached.
	ErrTooManyModels = errors.New("too many models loaded")
	// ErrNoSpace means the cap on total model bytes would be exceeded.
	ErrNoSpace = errors.New("model memory cap reached")
)

// Model is a loaded model. Its fields do not change after Add.
type Model struct {
	ID      string
	Hash    [32]byte // SHA-256 of the model bytes
	Size    int64    // model size in bytes
	Session *engine.Session
	Loaded  time.Time
	// Owner is the subject that uploaded the model ("" when the server
	// runs without authentication).
	Owner string
	// Public lets any authenticated subject run the model.
	Public bool
	// Saved means a sealed copy is on disk.
	Saved bool

	refs    int  // guarded by Store.mu
	deleted bool // guarded by Store.mu
}

// Store holds loaded models. Safe for concurrent use.
type Store struct {
	maxModels int
	maxBytes  int64

	mu       sync.Mutex
	models   map[key]*Model
	public   map[string]*Model // public models by id
	claimed  map[key]bool      // ids of uploads in progress
	used     int64             // bytes of loaded models plus reservations
	closeErr func(error)
}

// key names a model: its id within its owner's namespace.
type key struct{ owner, id string }

func keyOf(m *Model) key { return key{m.Owner, m.ID} }

// New returns an empty store that holds at most maxModels models and
// maxBytes bytes of models and reservations together. onCloseErr, if not
// nil, receives errors from closing sessions of deleted models.
func New(maxModels int, maxBytes int64, onCloseErr func(error)) *Store {
	return &Store{maxModels: maxModels, maxBytes: maxBytes, models: map[key]*Model{}, public: map[string]*Model{}, claimed: map[key]bool{}, closeErr: onCloseErr}
}

// Reservation is room taken against the total-bytes cap while a model's
// bytes arrive, before the model exists.
type Reservation struct {
	s    *Store
	mu   sync.Mutex
	size int64
}

// Reserve returns an empty reservation.
func (s *Store) Reserve() *Reservation { return &Reservation{s: s} }

// Grow takes n more bytes. It fails with ErrNoSpace, taking nothing, when
// the cap would be exceeded.
func (r *Reservation) Grow(n int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if n < 0 || r.s.used+n > r.s.maxBytes {
		return fmt.Errorf("%w: %d bytes in use or arriving, cap %d", ErrNoSpace, r.s.used, r.s.maxBytes)
	}
	r.s.used += n
	r.size += n
	return nil
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
	r.s.mu.Unlock()
	r.size = 0
}

// Claim reserves id in owner's namespace for an upload in progress: until
// Unclaim, or until the claimer adds the model, no one else can upload
// under it. It fails with ErrExists when owner has a model with id loaded
// or claimed. A claimed id is not loaded: runs and deletes of it find
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

// Has reports whether owner has a model with id loaded.
func (s *Store) Has(owner, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.models[key{owner, id}]
	return ok
}

// Add stores m, converting res (which must hold at least m.Size bytes) into
// the model's share of the cap. On error nothing changes and the caller
// still owns m.Session and res.
func (s *Store) Add(m *Model, res *Reservation) error { return s.AddIf(m, res, nil) }

// AddIf is Add, made only if ok (when not nil) returns nil at the moment of
// adding, inside the store's lock. An upload passes its stream context's Err,
// so that a client that cancelled, and then deletes the model to be sure,
// never leaves the model behind: either the add came first and the delete
// finds the model, or the cancel came first and the add is refused.
func (s *Store) AddIf(m *Model, res *Reservation, ok func() error) error {
	res.mu.Lock()
	defer res.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok != nil {
		if err := ok(); err != nil {
			return err
		}
	}
	k := keyOf(m)
	if _, ok := s.models[k]; ok {
		return fmt.Errorf("%w: %q", ErrExists, m.ID)
	}
	if p, ok := s.public[m.ID]; ok && m.Public && p.Owner != m.Owner {
		return fmt.Errorf("%w: %q is the id of another owner's public model", ErrExists, m.ID)
	}
	// A claimed id is the claimer's: Add is how the claimer completes it.
	// (Callers that did not claim, such as loading sealed models at start,
	// run before any upload.)
	if len(s.models) >= s.maxModels {
		return fmt.Errorf("%w: %d of %d", ErrTooManyModels, len(s.models), s.maxModels)
	}
	if res.size < m.Size {
		extra := m.Size - res.size
		if s.used+extra > s.maxBytes {
			return fmt.Errorf("%w: %d bytes in use, cap %d", ErrNoSpace, s.used, s.maxBytes)
		}
		s.used += extra
	} else {
		s.used -= res.size - m.Size
	}
	res.size = 0
	m.refs, m.deleted = 0, false
	s.models[k] = m
	if m.Public {
		s.public[m.ID] = m
	}
	delete(s.claimed, k)
	return nil
}

// Acquire returns the model that caller may use under id: caller's own
// model with that id, else the public model with that id. It also returns a
// release function that must be called when the caller no longer uses the
// model. A model deleted meanwhile stays usable until released. A model
// that exists but that caller may not use is reported as ErrNotFound, like
// one that does not exist.
func (s *Store) Acquire(caller, id string) (*Model, func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.models[key{caller, id}]
	if !ok {
		m, ok = s.public[id]
	}
	if !ok {
		return nil, nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	m.refs++
	var once sync.Once
	return m, func() { once.Do(func() { s.release(m) }) }, nil
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
// request using it is done; its bytes leave the cap at once.
func (s *Store) Delete(owner, id string) error { return s.DeleteIf(owner, id, nil) }

// DeleteIf removes owner's model with id if allow (when not nil) returns
// nil for it; otherwise it returns allow's error and keeps the model. The
// check and the removal are one atomic step. Only the owner's namespace is
// searched: another owner's model, public or not, is ErrNotFound.
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
	s.used -= m.Size
	m.deleted = true
	closeNow := m.refs == 0
	s.mu.Unlock()
	if closeNow {
		s.closeSession(m)
	}
	return nil
}

// Info is a summary of a loaded model.
type Info struct {
	ID     string
	Owner  string
	Public bool
	Hash   [32]byte
	Size   int64
	Loaded time.Time
}

// List returns the loaded models sorted by owner, then id.
func (s *Store) List() []Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Info, 0, len(s.models))
	for _, m := range s.models {
		out = append(out, Info{ID: m.ID, Owner: m.Owner, Public: m.Public, Hash: m.Hash, Size: m.Size, Loaded: m.Loaded})
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

// Usage returns the number of models and the bytes in use (models and
// reservations).
func (s *Store) Usage() (models int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.models), s.used
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
