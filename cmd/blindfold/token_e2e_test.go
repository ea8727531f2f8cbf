//go:build cgo

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/server"
)

// TestE2ETokens: an operator makes a key with token keygen and tokens with
// token issue; the server requires them; ownership holds across subjects.
func TestE2ETokens(t *testing.T) {
	dir := t.TempDir()
	key, pub := filepath.Join(dir, "issuer.key"), filepath.Join(dir, "issuer.pub")
	if code, _, errOut := runCLI(t, "token", "keygen", "--alg", "EdDSA", "--key", key, "--pub", pub); code != 0 {
		t.Fatalf("keygen: %d %s", code, errOut)
	}
	if fi, _ := os.Stat(key); fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v", fi.Mode().Perm())
	}
	if code, _, _ := runCLI(t, "token", "keygen", "--key", key, "--pub", pub); code != exitIO {
		t.Fatalf("keygen over existing files: exit %d, want %d", code, exitIO)
	}
	issue := func(sub string) string {
		code, out, errOut := runCLI(t, "token", "issue", "--key", key, "--sub", sub, "--ttl", "10m")
		if code != 0 {
			t.Fatalf("issue: %d %s", code, errOut)
		}
		return strings.TrimSpace(out)
	}
	alice, bob := issue("alice"), issue("bob")
	if code, _, _ := runCLI(t, "token", "issue", "--key", key); code != exitUsage {
		t.Fatalf("issue without --sub: exit %d", code)
	}

	srv := testserver.Start(t, func(c *server.Config) {
		c.Auth = server.AuthRequired
		c.AuthKeys = []string{pub}
	})
	_, port, _ := client.SplitAddr(srv.AttestedAddr)
	conn := []string{"--host-cert", srv.HostCertPEM, "--simulation", "--attested-port", strconv.Itoa(port), "--timeout", "30s"}
	model := filepath.Join(dir, "mlp.onnx")
	os.WriteFile(model, testserver.Model(t, "mlp.onnx"), 0o600)

	// with puts the server address after the command name.
	with := func(cmd string, args ...string) []string {
		return append(append([]string{cmd, srv.UntrustedAddr}, args...), conn...)
	}
	code, _, errOut := runCLI(t, with("upload", model, "--id", "m")...)
	if code != exitServer || !strings.Contains(errOut, "Unauthenticated") {
		t.Fatalf("upload without a token: exit %d, %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, with("upload", model, "--id", "m", "--token", alice)...); code != 0 {
		t.Fatalf("upload with alice's token: %d %s", code, errOut)
	}
	t.Setenv("BLINDFOLD_TOKEN", bob)
	code, _, errOut = runCLI(t, with("delete", "m")...)
	if code != exitServer || !strings.Contains(errOut, "NotFound") {
		t.Fatalf("bob deleting alice's model: exit %d, %s", code, errOut)
	}
	t.Setenv("BLINDFOLD_TOKEN", alice)
	if code, _, errOut := runCLI(t, with("delete", "m")...); code != 0 {
		t.Fatalf("alice deleting her model: %d %s", code, errOut)
	}
}
