package testserver

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/client"
)

// KillMidLoad checks that a replica of a cluster killed in the middle of a
// load loses no acknowledged model. clients goroutines each loop until
// stopped: connect (reconnecting after any failure), upload a model under a
// fresh id and check it. After 3 s of load kill runs (it must return once
// the replica is gone); the load goes on 3 s more. Then every model whose
// upload was acknowledged is checked again through fresh connections.
//
// check returns an error with a gRPC status for a failed call (counted,
// and the client reconnects) and any other error for a wrong answer, which
// fails the test. KillMidLoad fails the test if fewer than clients uploads
// were acknowledged or an acknowledged model is lost or wrong, and returns
// the number acknowledged and the calls that failed around the kill.
func KillMidLoad(t *testing.T, clients int, connect func() (*client.Client, error), upload func(c *client.Client, id string) error,
	check func(c *client.Client, id string, n int) error, kill func()) (acknowledged int, failed int64) {
	t.Helper()
	var acked sync.Map
	var failures atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *client.Client
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if c == nil {
					var err error
					if c, err = connect(); err != nil {
						failures.Add(1)
						time.Sleep(100 * time.Millisecond)
						continue
					}
				}
				id := fmt.Sprintf("load-%d-%d", i, n)
				if err := upload(c, id); err != nil {
					failures.Add(1)
					c.Close()
					c = nil
					continue
				}
				acked.Store(id, i+n)
				if err := check(c, id, i+n); err != nil {
					if status.Code(err) == codes.Unknown {
						t.Errorf("%s: wrong answer: %v", id, err)
					}
					failures.Add(1)
					c.Close()
					c = nil
				}
			}
		}()
	}
	time.Sleep(3 * time.Second)
	kill()
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	var checkers []*client.Client
	for range 4 { // four connections, spread over the replicas left
		c, err := connect()
		if err != nil {
			t.Fatalf("connect after the kill: %v", err)
		}
		defer c.Close()
		checkers = append(checkers, c)
	}
	var missing []string
	acked.Range(func(k, v any) bool {
		c := checkers[acknowledged%len(checkers)]
		acknowledged++
		if err := check(c, k.(string), v.(int)); err != nil {
			missing = append(missing, fmt.Sprintf("%s: %v", k, err))
		}
		return true
	})
	if acknowledged < clients {
		t.Fatalf("only %d uploads were acknowledged under load", acknowledged)
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d acknowledged models are lost or wrong after the kill: %v", len(missing), acknowledged, missing[:min(5, len(missing))])
	}
	return acknowledged, failures.Load()
}
