package server_test

import (
	"strings"
	"testing"

	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/server"
)

// TestBlindAI06NeedsItsFrontend: blindai06 = true in a program built
// without the 0.6 front end refuses to start instead of silently serving
// gRPC only.
func TestBlindAI06NeedsItsFrontend(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Simulation = true
	cfg.StateDir = t.TempDir()
	cfg.BlindAI06 = true
	_, err := server.New(server.Options{Config: cfg, Runtime: testserver.Runtime(t)})
	if err == nil || !strings.Contains(err.Error(), "BlindAI 0.6 front end") {
		t.Fatalf("New with blindai06 and no front end: %v", err)
	}
}
