package server

import (
	"context"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
)

// scheduler shares the server's inference slots (max_concurrent_runs)
// between tenants. Each tenant (authenticated subject) holds at most its
// cap (max_runs_per_subject) and queues its waiting runs in its own FIFO;
// a freed slot goes to the waiting tenant that holds the fewest slots (ties
// in round-robin order), so a tenant flooding the server waits for its own
// slots while a tenant with few runs gets the next free one.
type scheduler struct {
	slots  int // server-wide
	perTen int // one tenant's cap (slots when there is no authentication)

	mu      sync.Mutex
	free    int
	tenants map[string]*tenantQueue
	ring    []string // tenants with waiters, in round-robin order
	next    int      // ring position to look at first
	stats   map[string]*QueueStats
	// overShare counts grants made to a tenant that already held at
	// least as many slots as another tenant that was left waiting (never,
	// by construction; the fairness test checks it stays so).
	overShare uint64
}

// tenantQueue is one tenant's running count and waiting runs.
type tenantQueue struct {
	running int
	waiting []*waiter
}

type waiter struct {
	ch      chan struct{} // closed when granted
	granted bool          // guarded by scheduler.mu
}

// QueueStats are one tenant's inference-slot counts since start.
type QueueStats struct {
	// Tenant is the subject ("" without authentication).
	Tenant string
	// Runs is the slots granted; Waited those that had to queue first.
	Runs, Waited uint64
	// Refused is the runs that got no slot in time (or gave up).
	Refused uint64
	// WaitTime is the time queued runs waited together; MaxWait the
	// longest wait.
	WaitTime, MaxWait time.Duration
}

func newScheduler(slots, perTenant int) *scheduler {
	return &scheduler{slots: slots, perTen: perTenant, free: slots, tenants: map[string]*tenantQueue{}, stats: map[string]*QueueStats{}}
}

// capFor returns tenant's slot cap: everyone is one tenant ("") without
// authentication, and then the cap is every slot.
func (s *scheduler) capFor(tenant string) int {
	if tenant == "" {
		return s.slots
	}
	return s.perTen
}

func (s *scheduler) stat(tenant string) *QueueStats {
	st := s.stats[tenant]
	if st == nil {
		st = &QueueStats{Tenant: tenant}
		s.stats[tenant] = st
	}
	return st
}

// acquire waits for a slot for tenant until ctx ends or timer fires. It
// returns the slot's release function and how long it waited.
func (s *scheduler) acquire(ctx context.Context, tenant string, timer <-chan time.Time) (func(), time.Duration, error) {
	s.mu.Lock()
	q := s.tenants[tenant]
	if q == nil {
		q = &tenantQueue{}
		s.tenants[tenant] = q
	}
	st := s.stat(tenant)
	if s.free > 0 && q.running < s.capFor(tenant) && len(q.waiting) == 0 {
		s.grantLocked(tenant, q)
		st.Runs++
		s.mu.Unlock()
		return s.releaser(tenant), 0, nil
	}
	w := &waiter{ch: make(chan struct{})}
	if len(q.waiting) == 0 {
		s.ring = append(s.ring, tenant)
	}
	q.waiting = append(q.waiting, w)
	s.dispatchLocked() // in case a slot is free for someone
	s.mu.Unlock()
	start := time.Now()
	var cause error
	select {
	case <-w.ch:
	case <-timer:
	case <-ctx.Done():
		cause = contextStatus(ctx.Err())
	}
	waited := time.Since(start)
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.granted {
		st.Runs++
		st.Waited++
		st.WaitTime += waited
		st.MaxWait = max(st.MaxWait, waited)
		return s.releaser(tenant), waited, nil
	}
	s.removeWaiterLocked(tenant, q, w)
	st.Refused++
	if cause != nil {
		return nil, waited, cause
	}
	if tenant != "" && q.running >= s.perTen {
		return nil, waited, errorf(codes.ResourceExhausted, "you already run %d inferences at once, your share of this server (max_runs_per_subject), and none finished within the queue time (run_queue_timeout); retry later", q.running)
	}
	return nil, waited, errorf(codes.ResourceExhausted, "the server is busy: %d inferences are running (max_concurrent_runs) and none was free for you within the queue time (run_queue_timeout); retry later", s.slots)
}

// grantLocked gives tenant a slot.
func (s *scheduler) grantLocked(tenant string, q *tenantQueue) {
	for t, o := range s.tenants {
		if t != tenant && len(o.waiting) > 0 && o.running < q.running && o.running < s.capFor(t) {
			s.overShare++
		}
	}
	s.free--
	q.running++
}

// releaser returns the function that gives tenant's slot back once.
func (s *scheduler) releaser(tenant string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			q := s.tenants[tenant]
			q.running--
			s.free++
			if q.running == 0 && len(q.waiting) == 0 {
				delete(s.tenants, tenant)
			}
			s.dispatchLocked()
		})
	}
}

// dispatchLocked hands free slots to waiting tenants: each to the tenant
// under its cap that holds the fewest slots, the first such in
// round-robin order.
func (s *scheduler) dispatchLocked() {
	for s.free > 0 && len(s.ring) > 0 {
		best := -1
		for i := range s.ring {
			j := (s.next + i) % len(s.ring)
			q := s.tenants[s.ring[j]]
			if q.running >= s.capFor(s.ring[j]) {
				continue
			}
			if best < 0 || q.running < s.tenants[s.ring[best]].running {
				best = j
			}
		}
		if best < 0 {
			return // every waiting tenant is at its cap
		}
		tenant := s.ring[best]
		q := s.tenants[tenant]
		w := q.waiting[0]
		q.waiting = q.waiting[1:]
		w.granted = true
		close(w.ch)
		s.grantLocked(tenant, q)
		if len(q.waiting) == 0 {
			s.ring = append(s.ring[:best], s.ring[best+1:]...)
			if best < s.next {
				s.next--
			}
		} else {
			best++
		}
		if len(s.ring) > 0 {
			s.next = best % len(s.ring)
		} else {
			s.next = 0
		}
	}
}

// removeWaiterLocked takes a waiter that gave up out of its queue.
func (s *scheduler) removeWaiterLocked(tenant string, q *tenantQueue, w *waiter) {
	for i, x := range q.waiting {
		if x == w {
			q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
			break
		}
	}
	if len(q.waiting) == 0 {
		for i, t := range s.ring {
			if t == tenant {
				s.ring = append(s.ring[:i], s.ring[i+1:]...)
				if i < s.next {
					s.next--
				}
				break
			}
		}
		if s.next >= len(s.ring) {
			s.next = 0
		}
		if q.running == 0 {
			delete(s.tenants, tenant)
		}
	}
}

// queueStats returns every tenant's counts, sorted by tenant.
func (s *scheduler) queueStats() []QueueStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]QueueStats, 0, len(s.stats))
	for _, st := range s.stats {
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tenant < out[j].Tenant })
	return out
}

// unfairGrants returns how many slots went to a tenant that already held
// more than a tenant left waiting (0 unless the scheduler is
// broken).
func (s *scheduler) unfairGrants() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overShare
}

// runSlot waits for a free inference slot, at most run_queue_timeout, in
// the caller's own queue (see scheduler). Waits are logged at debug.
func (s *Server) runSlot(ctx context.Context, subject string) (func(), error) {
	t := time.NewTimer(time.Duration(s.cfg.RunQueueTimeout))
	defer t.Stop()
	release, waited, err := s.sched.acquire(ctx, subject, t.C)
	if waited > 0 {
		s.log.Debug("run queued for a slot", "tenant", subject, "waited", waited, "err", err != nil)
	}
	return s.meterSlot(release, waited, err), err
}
