package server

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func never() <-chan time.Time { return nil }

// TestSchedulerFreedSlotGoesToWaitingTenant: with both slots held by A and
// runs of A and B waiting, the next freed slot goes to B, whatever the
// order they queued in; A's next waiter gets the one after.
func TestSchedulerFreedSlotGoesToWaitingTenant(t *testing.T) {
	s := newScheduler(2, 2)
	ctx := context.Background()
	relA1, _, _ := s.acquire(ctx, "a", never())
	relA2, _, _ := s.acquire(ctx, "a", never())
	got := make(chan string, 4)
	var wg sync.WaitGroup
	for _, tenant := range []string{"a", "a", "a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rel, _, err := s.acquire(ctx, tenant, never())
			if err != nil {
				t.Error(err)
				return
			}
			got <- tenant
			rel()
		}()
		time.Sleep(10 * time.Millisecond) // queue in this order
	}
	relA1()
	if first := <-got; first != "b" {
		t.Fatalf("first freed slot went to %s, want b", first)
	}
	relA2()
	wg.Wait()
	if n := s.unfairGrants(); n != 0 {
		t.Fatalf("%d unfair grants", n)
	}
}

// TestSchedulerTenantCap: a tenant at its cap waits even with slots free,
// and is told it holds its share when the wait times out.
func TestSchedulerTenantCap(t *testing.T) {
	s := newScheduler(4, 1)
	ctx := context.Background()
	rel, _, err := s.acquire(ctx, "a", never())
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = s.acquire(ctx, "a", time.After(20*time.Millisecond))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("over the cap: %v", err)
	}
	if st, _ := status.FromError(err); st == nil || !contains(st.Message(), "max_runs_per_subject") {
		t.Fatalf("message %v does not name max_runs_per_subject", err)
	}
	relB, _, err := s.acquire(ctx, "b", never())
	if err != nil {
		t.Fatalf("another tenant with slots free: %v", err)
	}
	relB()
	rel()
	// Without authentication ("") the cap is every slot.
	var rels []func()
	for range 4 {
		r, _, err := s.acquire(ctx, "", never())
		if err != nil {
			t.Fatal(err)
		}
		rels = append(rels, r)
	}
	_, _, err = s.acquire(ctx, "", time.After(10*time.Millisecond))
	if status.Code(err) != codes.ResourceExhausted || !contains(status.Convert(err).Message(), "max_concurrent_runs") {
		t.Fatalf("server full: %v", err)
	}
	for _, r := range rels {
		r()
	}
	if len(s.tenants) != 0 || len(s.ring) != 0 || s.free != 4 {
		t.Fatalf("state left behind: %d tenants, ring %v, %d free", len(s.tenants), s.ring, s.free)
	}
}

// TestSchedulerCancelledWaiterLeavesNoTrace: a waiter that gives up is
// taken out of its queue; the slot it would have had goes to the next.
func TestSchedulerCancelledWaiterLeavesNoTrace(t *testing.T) {
	s := newScheduler(1, 1)
	rel, _, _ := s.acquire(context.Background(), "a", never())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, _, err := s.acquire(ctx, "b", never())
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled waiter: %v", err)
	}
	rel()
	rel() // a second release gives nothing back
	if s.free != 1 || len(s.tenants) != 0 || len(s.ring) != 0 {
		t.Fatalf("state left behind: %d free, %d tenants, ring %v", s.free, len(s.tenants), s.ring)
	}
	st := s.queueStats()
	if len(st) != 2 || st[1].Refused != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestSchedulerFlood: one tenant floods from 8 goroutines, another runs
// from 1; the second never gets a refusal, and no slot ever goes to a
// tenant holding more than one left waiting.
func TestSchedulerFlood(t *testing.T) {
	s := newScheduler(2, 2)
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	work := func(tenant string) {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			rel, _, err := s.acquire(ctx, tenant, time.After(5*time.Second))
			if err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond)
			rel()
		}
	}
	for range 8 {
		wg.Add(1)
		go work("a")
	}
	wg.Add(1)
	go work("b")
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if n := s.unfairGrants(); n != 0 {
		t.Fatalf("%d unfair grants", n)
	}
	st := s.queueStats()
	if len(st) != 2 || st[1].Tenant != "b" || st[1].Runs == 0 || st[1].Refused != 0 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("a: %+v; b: %+v", st[0], st[1])
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
