package server_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/server"
	"github.com/blindfold-ai/blindfold/tensor"
)

// scaledModel returns a model that multiplies its [1,8] input by c.
func scaledModel(t *testing.T, c float32) []byte {
	t.Helper()
	b, err := onnxgen.Scaled(8, c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// scaleOf is the factor of model i.
func scaleOf(i int) float32 { return float32(i + 2) }

// budgetFor returns options for a memory budget that holds n models of
// size bytes (and no more).
func budgetFor(n, size int) testserver.Option {
	return func(c *server.Config) {
		c.MaxModelBytes = server.ByteSize(size)
		c.MaxTotalModelBytes = server.ByteSize(n*size + size/2)
	}
}

// runScaled runs model id on 1..8 and checks every output is c times its
// input.
func runScaled(t *testing.T, ctx context.Context, b *blindai, id string, c float32) error {
	t.Helper()
	in := make([]float32, 8)
	for i := range in {
		in[i] = float32(i + 1)
	}
	x, err := tensor.New("x", []int64{1, 8}, in)
	if err != nil {
		t.Fatal(err)
	}
	p, _, _, err := b.run(ctx, id, []tensor.Tensor{x}, false)
	if err != nil {
		return err
	}
	out := p.GetOutputTensors()
	if len(out) != 1 || len(out[0].BytesData) != 32 {
		return fmt.Errorf("model %s: unexpected outputs %v", id, out)
	}
	for i := range in {
		got := math.Float32frombits(binary.LittleEndian.Uint32(out[0].BytesData[4*i:]))
		if got != c*in[i] {
			return fmt.Errorf("model %s: y[%d] = %v, want %v", id, i, got, c*in[i])
		}
	}
	return nil
}

// tenantStats returns the counts of tenant on ts.
func tenantStats(ts *testserver.Server, tenant string) server.TenantStats {
	for _, st := range ts.Tenants() {
		if st.Owner == tenant {
			return st
		}
	}
	return server.TenantStats{}
}

// TestEvictionRoundRobin: a budget that holds 3 of 5 saved models; all 5
// answer correctly in a loop, each run of an evicted model reloading it.
func TestEvictionRoundRobin(t *testing.T) {
	size := len(scaledModel(t, 1))
	ts := testserver.Start(t, budgetFor(3, size))
	b := connectLikeBlindAI(t, ts)
	ctx := context.Background()
	for i := range 5 {
		b.uploadSaved(t, scaledModel(t, scaleOf(i)), fmt.Sprintf("m%d", i))
	}
	if n, used := ts.Usage(); n != 5 || used > int64(3*size) {
		t.Fatalf("after 5 uploads: %d models, %d bytes in memory; want 5 held, at most %d bytes", n, used, 3*size)
	}
	const rounds = 3
	for r := range rounds {
		for i := range 5 {
			if err := runScaled(t, ctx, b, fmt.Sprintf("m%d", i), scaleOf(i)); err != nil {
				t.Fatalf("round %d: %v", r, err)
			}
			if st := tenantStats(ts, ""); st.Loaded > 3 {
				t.Fatalf("%d models in memory, budget holds 3", st.Loaded)
			}
		}
	}
	// Least recently used, in a loop over 5 with room for 3: every run
	// finds its model evicted.
	st := tenantStats(ts, "")
	if st.Reloads != 5*rounds || st.Evictions != 2+5*rounds || st.ReloadFailures != 0 {
		t.Fatalf("reloads %d, evictions %d, failures %d; want %d, %d, 0", st.Reloads, st.Evictions, st.ReloadFailures, 5*rounds, 2+5*rounds)
	}
	if st.ReloadTime <= 0 {
		t.Fatal("reload time not counted")
	}
}

// TestUnsavedNeverEvicted: models uploaded without save_model stay in
// memory; saved ones rotate through the room left; an upload that only
// unsaved models could make room for is refused, saying so.
func TestUnsavedNeverEvicted(t *testing.T) {
	size := len(scaledModel(t, 1))
	ts := testserver.Start(t, budgetFor(3, size))
	b := connectLikeBlindAI(t, ts)
	ctx := context.Background()
	for i := range 2 {
		if _, _, _, err := b.upload(ctx, scaledModel(t, scaleOf(i)), fmt.Sprintf("m%d", i), false); err != nil {
			t.Fatal(err)
		}
	}
	for i := 2; i < 5; i++ {
		b.uploadSaved(t, scaledModel(t, scaleOf(i)), fmt.Sprintf("m%d", i))
	}
	for r := range 2 {
		for i := range 5 {
			if err := runScaled(t, ctx, b, fmt.Sprintf("m%d", i), scaleOf(i)); err != nil {
				t.Fatalf("round %d: %v", r, err)
			}
			for _, info := range listModels(ts) {
				if (info.id == "m0" || info.id == "m1") && info.evicted {
					t.Fatalf("unsaved model %s was evicted", info.id)
				}
			}
		}
	}
	// A third unsaved model fits (evicting a saved one); a fourth does not.
	if _, _, _, err := b.upload(ctx, scaledModel(t, 9), "u2", false); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := b.upload(ctx, scaledModel(t, 9), "u3", false)
	wantStatus(t, err, codes.ResourceExhausted, "save_model")
	for i := range 2 {
		if err := runScaled(t, ctx, b, fmt.Sprintf("m%d", i), scaleOf(i)); err != nil {
			t.Fatal(err)
		}
	}
	// With every slot held by unsaved models, an evicted model cannot be
	// reloaded: the run says so, and nothing is lost.
	_, _, _, err = b.run(ctx, "m2", []tensor.Tensor{f32(t, []int64{1, 8})}, false)
	wantStatus(t, err, codes.ResourceExhausted, "evicted")
	if _, err := b.ex.DeleteModel(ctx, &securedexchange.DeleteModelRequest{ModelId: "u2"}); err != nil {
		t.Fatal(err)
	}
	if err := runScaled(t, ctx, b, "m2", scaleOf(2)); err != nil {
		t.Fatalf("after room was made: %v", err)
	}
}

type listed struct {
	id      string
	evicted bool
}

func listModels(ts *testserver.Server) []listed {
	var out []listed
	for _, i := range ts.HeldModels() {
		out = append(out, listed{i.ID, i.Evicted})
	}
	return out
}

// TestDeletedWhileEvictedStaysDeleted: deleting an evicted model removes
// it and its sealed copy, also across a restart.
func TestDeletedWhileEvictedStaysDeleted(t *testing.T) {
	size := len(scaledModel(t, 1))
	state := t.TempDir()
	ts := testserver.Start(t, budgetFor(1, size), func(c *server.Config) { c.StateDir = state })
	b := connectLikeBlindAI(t, ts)
	ctx := context.Background()
	b.uploadSaved(t, scaledModel(t, 2), "a")
	b.uploadSaved(t, scaledModel(t, 3), "b") // evicts a
	if l := listModels(ts); len(l) != 2 || l[0] != (listed{"a", true}) {
		t.Fatalf("models %v; want a evicted", l)
	}
	if _, err := b.ex.DeleteModel(ctx, &securedexchange.DeleteModelRequest{ModelId: "a"}); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := b.run(ctx, "a", []tensor.Tensor{f32(t, []int64{1, 8})}, false)
	wantStatus(t, err, codes.NotFound, `no model with id "a"`)
	if st := tenantStats(ts, ""); st.Reloads != 0 {
		t.Fatalf("a deleted model was reloaded (%d reloads)", st.Reloads)
	}
	files, _ := filepath.Glob(filepath.Join(state, "models", "*"))
	if len(files) != 1 {
		t.Fatalf("sealed files %v; want only b's", files)
	}
	ctxStop, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctxStop); err != nil {
		t.Fatal(err)
	}
	ts2 := testserver.Start(t, budgetFor(1, size), func(c *server.Config) { c.StateDir = state })
	b2 := connectLikeBlindAI(t, ts2)
	if l := listModels(ts2); len(l) != 1 || l[0].id != "b" {
		t.Fatalf("after restart: %v; want b only", l)
	}
	_, _, _, err = b2.run(ctx, "a", []tensor.Tensor{f32(t, []int64{1, 8})}, false)
	wantStatus(t, err, codes.NotFound, `no model with id "a"`)
	if err := runScaled(t, ctx, b2, "b", 3); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentFirstRunsReloadOnce: 16 clients run an evicted model at
// once; it is reloaded once and every answer is right.
func TestConcurrentFirstRunsReloadOnce(t *testing.T) {
	size := len(scaledModel(t, 1))
	ts := testserver.Start(t, budgetFor(1, size), func(c *server.Config) { c.MaxConcurrentRuns = 16 })
	ctx := context.Background()
	b := connectLikeBlindAI(t, ts)
	b.uploadSaved(t, scaledModel(t, 2), "a")
	b.uploadSaved(t, scaledModel(t, 3), "b") // evicts a
	clients := make([]*blindai, 16)
	for i := range clients {
		clients[i] = connectLikeBlindAI(t, ts)
	}
	start := make(chan struct{})
	errs := make(chan error, len(clients))
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs <- runScaled(t, ctx, c, "a", 2)
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if st := tenantStats(ts, ""); st.Reloads != 1 {
		t.Fatalf("%d reloads for 16 concurrent first runs, want 1", st.Reloads)
	}
}

// TestTenantQuotas: tenant_max_models and tenant_max_model_bytes refuse a
// subject's upload without touching another subject.
func TestTenantQuotas(t *testing.T) {
	iss := newIssuer(t)
	size := len(scaledModel(t, 1))
	_, b := startAuthServer(t, iss, func(c *server.Config) {
		c.TenantMaxModels = 2
		c.MaxModelBytes = server.ByteSize(size)
		c.TenantMaxModelBytes = server.ByteSize(3 * size)
	})
	alice := bearer(iss.token(t, jwt.SigningMethodES256, "alice", time.Hour))
	bob := bearer(iss.token(t, jwt.SigningMethodES256, "bob", time.Hour))
	for _, id := range []string{"a1", "a2"} {
		if _, _, _, err := b.upload(alice, scaledModel(t, 2), id, false); err != nil {
			t.Fatal(err)
		}
	}
	_, _, _, err := b.upload(alice, scaledModel(t, 2), "a3", false)
	wantStatus(t, err, codes.ResourceExhausted, "tenant_max_models")
	if _, _, _, err := b.upload(bob, scaledModel(t, 2), "b1", false); err != nil {
		t.Fatalf("bob refused for alice's quota: %v", err)
	}
	if err := runScaled(t, alice, b, "a1", 2); err != nil {
		t.Fatal(err)
	}
}

// TestRestartBeyondBudget: saved models that do not fit the memory budget
// at start are held evicted and load on their first run.
func TestRestartBeyondBudget(t *testing.T) {
	size := len(scaledModel(t, 1))
	state := t.TempDir()
	ts := testserver.Start(t, budgetFor(3, size), func(c *server.Config) { c.StateDir = state })
	b := connectLikeBlindAI(t, ts)
	for i := range 4 {
		b.uploadSaved(t, scaledModel(t, scaleOf(i)), fmt.Sprintf("m%d", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	ts2 := testserver.Start(t, budgetFor(1, size), func(c *server.Config) { c.StateDir = state })
	if n, _ := ts2.Usage(); n != 4 {
		t.Fatalf("%d models held after the restart, want 4", n)
	}
	if st := tenantStats(ts2, ""); st.Loaded != 1 {
		t.Fatalf("%d models in memory after the restart, budget 1", st.Loaded)
	}
	b2 := connectLikeBlindAI(t, ts2)
	for i := range 4 {
		if err := runScaled(t, context.Background(), b2, fmt.Sprintf("m%d", i), scaleOf(i)); err != nil {
			t.Fatal(err)
		}
	}
	if st := tenantStats(ts2, ""); st.Reloads < 3 || st.Loaded != 1 {
		t.Fatalf("after running all: %+v", st.TenantStats)
	}
}
