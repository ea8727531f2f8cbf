package soak

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/internal/testserver"
)

// TestSoakShort is the short soak that runs in the test command: a few
// seconds of mixed traffic from 8 clients, every answer checked, resources
// back to baseline. `make soak` runs the long one.
func TestSoakShort(t *testing.T) {
	rt := testserver.Runtime(t)
	d := 8 * time.Second
	if testing.Short() {
		d = 3 * time.Second
	}
	rep, err := Run(context.Background(), Options{Duration: d, Clients: 8, Seed: 1, Runtime: rt, StateDir: t.TempDir(), Progress: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.String())
	if !rep.OK() {
		t.Fatalf("soak failed:\n%s", rep)
	}
	for _, kind := range []string{"run", "signed-run", "upload", "delete", "bad-input", "bad-model", "not-found", "cancelled",
		"http-run", "http-upload", "http-run-own", "http-delete", "http-bad-cbor", "http-not-found", "http-bad-input"} {
		if rep.ByKind[kind] == 0 {
			t.Errorf("the soak sent no %q request", kind)
		}
	}
	if rep.ByCode["InvalidArgument"] == 0 || rep.ByCode["NotFound"] == 0 || rep.ByCode["OK"] == 0 {
		t.Errorf("answers by code lack an expected kind: %v", rep.ByCode)
	}
}

// TestSoakEviction is the short soak with room in memory for fewer models
// than the clients use: models are evicted and reloaded throughout, and
// every answer must stay right.
func TestSoakEviction(t *testing.T) {
	rt := testserver.Runtime(t)
	d := 6 * time.Second
	if testing.Short() {
		d = 3 * time.Second
	}
	rep, err := Run(context.Background(), Options{Duration: d, Clients: 8, Seed: 2, Runtime: rt, StateDir: t.TempDir(), Evict: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.String())
	if !rep.OK() {
		t.Fatalf("soak failed:\n%s", rep)
	}
	if rep.Reloads < 10 || rep.ModelsInMemory != 10 || rep.SharedModels <= rep.ModelsInMemory {
		t.Fatalf("eviction did not churn: %d reloads, %d in memory, %d shared", rep.Reloads, rep.ModelsInMemory, rep.SharedModels)
	}
}
