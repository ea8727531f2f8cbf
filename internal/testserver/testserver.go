// Package testserver starts a real Blindfold server in-process for tests:
// the real engine, real gRPC over real TLS on loopback, in simulation mode
// or in hardware mode with a test double of the TEE's evidence.
package testserver

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/engine"
	"github.com/blindfold-ai/blindfold/server"
	"github.com/blindfold-ai/blindfold/server/blindai06"
)

// Server is a running test server.
type Server struct {
	*server.Server
	// Config is the configuration it runs with.
	Config server.Config
	// UntrustedAddr and AttestedAddr are the loopback addresses of the ports.
	UntrustedAddr, AttestedAddr string
	// HostCertPEM is the path of the untrusted port's certificate.
	HostCertPEM string
	// Runtime is the engine runtime the server uses; tests may load the
	// same models directly to compare outputs.
	Runtime *engine.Runtime
	// BlindAI06 is the BlindAI 0.6 front end; it serves (on loopback
	// ports, see its Addr) when an Option sets Config.BlindAI06 (BlindAI06On).
	BlindAI06 *blindai06.Frontend
}

// BlindAI06On also serves BlindAI 0.6's HTTP/CBOR protocol.
func BlindAI06On(c *server.Config) { c.BlindAI06 = true }

// Option changes the configuration before the server starts.
type Option func(*server.Config)

// Runtime opens the engine, or skips the test saying what is missing.
func Runtime(t testing.TB) *engine.Runtime {
	t.Helper()
	if _, err := engine.FindLibrary(""); err != nil {
		if os.Getenv("CI") != "" { // CI installs it (scripts/test.sh): missing there is a failure
			t.Fatalf("ONNX Runtime library not found (run scripts/setup-onnxruntime.sh or set %s): %v", engine.LibraryEnv, err)
		}
		t.Skipf("ONNX Runtime library not found (run scripts/setup-onnxruntime.sh or set %s): %v", engine.LibraryEnv, err)
	}
	rt, err := engine.Open(engine.Options{})
	if err != nil {
		t.Fatalf("opening ONNX Runtime: %v", err)
	}
	return rt
}

// Start starts a simulation-mode server on loopback and stops it when the
// test ends. Logs go to the test log when -v is given.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	return StartWithLogger(t, slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn})), opts...)
}

// StartWithLogger is Start with the server's logs sent to log.
func StartWithLogger(t testing.TB, log *slog.Logger, opts ...Option) *Server {
	t.Helper()
	return start(t, log, nil, nil, opts...)
}

// StartHardware starts a hardware-mode server whose evidence comes from att
// (a test double of the TEE, such as sgxtest.Attester), with
// authentication off and a sealing key file in a temporary folder.
func StartHardware(t testing.TB, att attest.Attester, opts ...Option) *Server {
	t.Helper()
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	return start(t, slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn})), att, nil, opts...)
}

// StartHardwareWith is StartHardware with setup applied to the server's
// Options (after the configuration) and the logs sent to log.
func StartHardwareWith(t testing.TB, log *slog.Logger, att attest.Attester, setup func(*server.Options), opts ...Option) *Server {
	t.Helper()
	return start(t, log, att, setup, opts...)
}

// Prepare returns the configuration Start would use with opts, and the
// runtime, for tests that call server.New themselves (a start that must
// fail).
func Prepare(t testing.TB, hardware bool, opts ...Option) (server.Config, *engine.Runtime) {
	t.Helper()
	rt := Runtime(t)
	return config(t, hardware, opts...), rt
}

func config(t testing.TB, hardware bool, opts ...Option) server.Config {
	cfg := server.DefaultConfig()
	cfg.Simulation = !hardware
	cfg.UntrustedAddr = "127.0.0.1:0"
	cfg.AttestedAddr = "127.0.0.1:0"
	cfg.BlindAI06UnattestedAddr = "127.0.0.1:0"
	cfg.BlindAI06AttestedAddr = "127.0.0.1:0"
	cfg.BlindAI06ManagementAddr = "127.0.0.1:0"
	cfg.StateDir = t.TempDir()
	cfg.ShutdownTimeout = server.Duration(5 * time.Second)
	if hardware {
		cfg.Auth = server.AuthNone
		cfg.SealingKeyFile = filepath.Join(t.TempDir(), "sealing.key")
		if err := os.WriteFile(cfg.SealingKeyFile, bytes.Repeat([]byte{0x5a}, 32), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

func start(t testing.TB, log *slog.Logger, att attest.Attester, setup func(*server.Options), opts ...Option) *Server {
	t.Helper()
	rt := Runtime(t)
	cfg := config(t, att != nil, opts...)
	fe := blindai06.New()
	so := server.Options{Config: cfg, Runtime: rt, Logger: log, Attester: att, Frontends: []server.Frontend{fe}}
	if setup != nil {
		setup(&so)
	}
	srv, err := server.New(so)
	if err != nil {
		t.Fatalf("starting test server: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("starting test server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("test server shutdown: %v", err)
		}
	})
	return &Server{
		Server:        srv,
		Config:        cfg,
		UntrustedAddr: srv.UntrustedAddr(),
		AttestedAddr:  srv.AttestedAddr(),
		HostCertPEM:   hostCert(cfg),
		Runtime:       rt,
		BlindAI06:     fe,
	}
}

// Model returns the bytes of testdata/models/NAME from the repository root.
func Model(t testing.TB, name string) []byte {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		p := filepath.Join(dir, "testdata", "models", name)
		if b, err := os.ReadFile(p); err == nil {
			return b
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("testdata/models/%s not found above the test's folder", name)
		}
		dir = parent
	}
}

func hostCert(cfg server.Config) string {
	if cfg.HostCert != "" {
		return cfg.HostCert
	}
	return filepath.Join(cfg.StateDir, "host_server.pem")
}
