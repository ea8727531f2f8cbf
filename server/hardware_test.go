//go:build cgo

package server_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest/attesttest"
	"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/server"
)

// TestHardwareModeFailsClosed: the server starts without simulation only
// with an evidence provider, and never mixes simulation with one.
func TestHardwareModeFailsClosed(t *testing.T) {
	pki, err := sgxtest.NewPKI(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	att := attesttest.NewAttester(pki, time.Now())
	base := func() server.Config {
		c := server.DefaultConfig()
		c.StateDir = t.TempDir()
		c.Auth = server.AuthNone
		return c
	}
	tests := []struct {
		name   string
		change func(*server.Config)
		att    bool
		want   string
	}{
		{"no TEE, no simulation", func(*server.Config) {}, false, `tee = "sgx-gramine"`},
		{"simulation with an attester", func(c *server.Config) { c.Simulation = true }, true, "simulation must not"},
		{"unknown tee", func(c *server.Config) { c.TEE = "sgx-occlum" }, false, `"sgx-occlum" is not one of`},
		{"tdx without pccs_url", func(c *server.Config) { c.TEE = server.TEETDX }, false, "pccs_url"},
		{"cvm tee with simulation", func(c *server.Config) { c.TEE = server.TEESNP; c.Simulation = true }, false, "exclude each other"},
		{"cvm tee outside a confidential VM", func(c *server.Config) { c.TEE = server.TEESNP }, false, "configfs-tsm"},
		{"tee without pccs_url", func(c *server.Config) { c.TEE = server.TEESGXGramine }, false, "pccs_url"},
		{"tee with simulation", func(c *server.Config) { c.TEE = server.TEESGXGramine; c.Simulation = true; c.PCCSURL = "https://pccs" }, false, "exclude each other"},
		{"tee outside Gramine", func(c *server.Config) {
			c.TEE = server.TEESGXGramine
			c.PCCSURL = "https://pccs.invalid"
			c.AttestationDir = t.TempDir()
		}, false, "attestation_type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.change(&cfg)
			opts := server.Options{Config: cfg, Runtime: testserver.Runtime(t), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			if tc.att {
				opts.Attester = att
			}
			_, err := server.New(opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}
