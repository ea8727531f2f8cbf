//go:build cgo

package server_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/server"
)

func writePublicKey(t *testing.T) (path, fingerprint string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "issuer.pub")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, identity.Fingerprint(der)
}

// TestStartLogsAuth: start-up says whether authentication is on and which
// keys were loaded, and warns when keys are set but authentication is off.
func TestStartLogsAuth(t *testing.T) {
	key, fp := writePublicKey(t)

	var off syncBuffer
	testserver.StartWithLogger(t, slog.New(slog.NewTextHandler(&off, &slog.HandlerOptions{Level: slog.LevelInfo})), func(c *server.Config) {
		c.AuthKeys = []string{key} // simulation: auth defaults to none
	})
	if !strings.Contains(off.String(), `msg="auth_keys are set but authentication is off, so they are ignored; set auth = \"required\"`) ||
		!strings.Contains(off.String(), "from=\"default for simulation\"") {
		t.Errorf("no warning about ignored auth_keys:\n%s", off.String())
	}

	var on syncBuffer
	testserver.StartWithLogger(t, slog.New(slog.NewTextHandler(&on, &slog.HandlerOptions{Level: slog.LevelInfo})), func(c *server.Config) {
		c.Auth = server.AuthRequired
		c.AuthKeys = []string{key}
	})
	if !strings.Contains(on.String(), "authentication required") || !strings.Contains(on.String(), "key_sha256="+fp) || strings.Contains(on.String(), "are ignored") {
		t.Errorf("start-up log does not name the mode and the key:\n%s", on.String())
	}
}
