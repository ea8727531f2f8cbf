package server_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/server"
	"github.com/blindfold-ai/blindfold/tensor"
)

// TestFairShareUnderFlood: tenant A floods from 8 clients while tenant B
// runs from 1, over real TLS with authentication. B is never refused, every
// answer is right, and no slot ever goes to A while B waits holding fewer.
// (B's latency under the flood is measured by the benchmark, not here.)
func TestFairShareUnderFlood(t *testing.T) {
	iss := newIssuer(t)
	ts, _ := startAuthServer(t, iss, func(c *server.Config) { c.MaxConcurrentRuns = 4; c.RunQueueTimeout = server.Duration(30 * time.Second) })
	model, err := onnxgen.Scaled(512, 3)
	if err != nil {
		t.Fatal(err)
	}
	alice := bearer(iss.token(t, jwt.SigningMethodES256, "alice", time.Hour))
	bob := bearer(iss.token(t, jwt.SigningMethodES256, "bob", time.Hour))
	up := connectLikeBlindAI(t, ts)
	if _, _, _, err := up.upload(alice, model, "m", false); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := up.upload(bob, model, "m", false); err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 32*512)
	for i := range x {
		x[i] = float32(i % 7)
	}
	in, err := tensor.New("x", []int64{32, 512}, x)
	if err != nil {
		t.Fatal(err)
	}
	check := func(ctx context.Context, b *blindai) error {
		p, _, _, err := b.run(ctx, "m", []tensor.Tensor{in}, false)
		if err != nil {
			return err
		}
		y, err := tensor.Values[float32](tensor.Tensor{DType: tensor.F32, Shape: []int64{32, 512}, Data: p.GetOutputTensors()[0].BytesData})
		if err != nil {
			return err
		}
		for i := range x {
			if y[i] != 3*x[i] {
				t.Errorf("y[%d] = %v, want %v", i, y[i], 3*x[i])
				break
			}
		}
		return nil
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	flood := func(ctx context.Context, b *blindai) {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := check(ctx, b); err != nil {
				t.Error(err)
				return
			}
		}
	}
	for range 8 {
		wg.Add(1)
		go flood(alice, connectLikeBlindAI(t, ts))
	}
	bc := connectLikeBlindAI(t, ts)
	deadline := time.Now().Add(time.Second)
	runs := 0
	for time.Now().Before(deadline) {
		if err := check(bob, bc); err != nil {
			t.Fatalf("bob under alice's flood: %v", err)
		}
		runs++
	}
	close(stop)
	wg.Wait()
	if n := server.UnfairGrants(ts.Server); n != 0 {
		t.Fatalf("%d slots went to a tenant holding more than one left waiting", n)
	}
	a, b := tenantStats(ts, "alice").Queue, tenantStats(ts, "bob").Queue
	if b.Refused != 0 || b.Runs != uint64(runs) {
		t.Fatalf("bob: %+v after %d runs", b, runs)
	}
	t.Logf("alice %+v; bob %+v", a, b)
}
