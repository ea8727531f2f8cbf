package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/engine"
)

// TestEveryEngineErrorHasAStatus: each engine sentinel (engine.Errors,
// kept complete by the engine's own test) has its entry in
// engineStatuses, and a wrapped one maps to that entry's code, never to
// UNKNOWN or to a neighbour's.
func TestEveryEngineErrorHasAStatus(t *testing.T) {
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, sentinel := range engine.Errors() {
		var entry *engineStatus
		for i := range engineStatuses {
			if engineStatuses[i].err == sentinel {
				entry = &engineStatuses[i]
			}
		}
		if entry == nil {
			t.Errorf("engine sentinel %q has no entry in engineStatuses: give it a deliberate status", sentinel)
			continue
		}
		err := s.engineError(fmt.Errorf("%w: details", sentinel), "m")
		if got := status.Code(err); got != entry.code || got == codes.Unknown || got == codes.OK {
			t.Errorf("%q: code %v, want %v", sentinel, got, entry.code)
		}
	}
	if len(engineStatuses) != len(engine.Errors()) {
		t.Errorf("engineStatuses has %d entries for %d engine sentinels", len(engineStatuses), len(engine.Errors()))
	}
	want := map[error]codes.Code{
		engine.ErrUnsupportedModel:    codes.InvalidArgument,
		engine.ErrUnsupportedType:     codes.InvalidArgument,
		engine.ErrExternalData:        codes.InvalidArgument,
		engine.ErrInvalidModel:        codes.InvalidArgument,
		engine.ErrTooManyNodes:        codes.ResourceExhausted,
		engine.ErrTooManyInitializers: codes.ResourceExhausted,
		engine.ErrRun:                 codes.InvalidArgument,
	}
	for sentinel, code := range want {
		if got := status.Code(s.engineError(fmt.Errorf("%w: x", sentinel), "m")); got != code {
			t.Errorf("%q: %v, want %v", sentinel, got, code)
		}
	}
	// A run out of memory wraps ErrRun too; the memory entry wins.
	oom := fmt.Errorf("%w: %w: x", engine.ErrRun, engine.ErrMemoryLimit)
	if got := status.Code(s.engineError(oom, "m")); got != codes.ResourceExhausted {
		t.Errorf("out of memory during a run: %v, want RESOURCE_EXHAUSTED", got)
	}
	// Errors outside the table are INTERNAL and say nothing of their text.
	err := s.engineError(errors.New("engine: creating session options: /secret/path"), "m")
	if status.Code(err) != codes.Internal || strings.Contains(err.Error(), "/secret") {
		t.Errorf("unknown error: %v", err)
	}
	// A run cancelled by the client is CANCELLED, not a model failure.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := status.Code(s.runStatus(ctx, "m", fmt.Errorf("%w: x", engine.ErrRun))); got != codes.Canceled {
		t.Errorf("cancelled run: %v", got)
	}
}
