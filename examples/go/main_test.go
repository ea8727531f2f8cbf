//go:build cgo

package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/internal/testserver"
)

// TestRun runs the example program against a real simulation server on
// non-default ports, reached through the untrusted address alone.
func TestRun(t *testing.T) {
	srv := testserver.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out strings.Builder
	err := run(ctx, options{addr: srv.UntrustedAddr, hostCert: srv.HostCertPEM, model: filepath.Join("..", "..", "testdata", "models", "demo.onnx"), simulation: true}, &out)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"attested port " + srv.AttestedAddr, "uploaded example-model inputs [features: float32[-1 4]]", "may run example-model public false mine true", "output probabilities float32 [1 3]", "signed reply verified: true"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := run(ctx, options{addr: srv.UntrustedAddr, hostCert: srv.HostCertPEM}, &out); err == nil || !strings.Contains(err.Error(), "--simulation") {
		t.Errorf("without --simulation or --policy: %v", err)
	}
}
