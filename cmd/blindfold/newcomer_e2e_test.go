//go:build cgo

package main

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/proof"
	"github.com/blindfold-ai/blindfold/server"
)

// TestE2ECatalogueAndEnvironment: with the connection in environment
// variables and no --attested-port (discovered), upload prints the specs,
// list and describe show the model, version shows both sides, --quiet
// shortens the banner to one line.
func TestE2ECatalogueAndEnvironment(t *testing.T) {
	srv := testserver.Start(t)
	dir := t.TempDir()
	model := filepath.Join(dir, "demo.onnx")
	if err := os.WriteFile(model, testserver.Model(t, "demo.onnx"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BLINDFOLD_ADDR", srv.UntrustedAddr)
	t.Setenv("BLINDFOLD_HOST_CERT", srv.HostCertPEM)
	t.Setenv("BLINDFOLD_SIMULATION", "1")
	t.Setenv("BLINDFOLD_QUIET", "true")

	code, out, errOut := runCLI(t, "upload", model, "--id", "demo")
	if code != exitOK {
		t.Fatalf("upload: exit %d: %s", code, errOut)
	}
	hash := hex.EncodeToString(proof.ModelHash(testserver.Model(t, "demo.onnx")))
	if want := "model_id: demo\nsha256:   " + hash + "\ninputs:\n  features float32[?,4]\noutputs:\n"; !strings.HasPrefix(out, want) {
		t.Errorf("upload printed %q, want it to start with %q", out, want)
	}
	if strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "SIMULATION MODE") || !strings.Contains(errOut, "PROTECTS NOTHING") {
		t.Errorf("--quiet: stderr should be the one-line simulation warning, got %q", errOut)
	}

	code, out, errOut = runCLI(t, "list")
	if code != exitOK || !strings.Contains(out, "ID") || !strings.Contains(out, "demo") || !strings.Contains(out, "features float32[?,4]") || !strings.Contains(out, hash[:16]) {
		t.Fatalf("list: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "describe", "demo", "--json")
	if code != exitOK {
		t.Fatalf("describe: exit %d: %s", code, errOut)
	}
	var m modelJSON
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("describe --json: %v\n%s", err, out)
	}
	if m.ID != "demo" || m.SHA256 != hash || !m.Owned || m.Public || len(m.Inputs) != 1 || m.Inputs[0].DType != "float32" || len(m.Inputs[0].Shape) != 2 || m.Inputs[0].Shape[0] != -1 {
		t.Errorf("describe --json: %+v", m)
	}
	code, out, errOut = runCLI(t, "describe", "nope")
	if code != exitServer || out != "" || !strings.Contains(errOut, `the server refused the request (NotFound): no model with id "nope" is loaded that you may use`) || strings.Contains(errOut, "rpc error") {
		t.Errorf("describe of a missing model: exit %d: %s", code, errOut)
	}
	code, out, errOut = runCLI(t, "version")
	if code != exitOK || !strings.Contains(out, "client: blindfold ") || !strings.Contains(out, "server: blindfold-server "+server.Version+" (protocol 0.5.0)") {
		t.Errorf("version: exit %d\n%s\n%s", code, out, errOut)
	}
	// One layer, in CLI words: no Go option names, no gRPC wrapping.
	code, _, errOut = runCLI(t, "upload", model, "--id", "demo")
	if code != exitServer || !strings.Contains(errOut, "blindfold upload: the server refused the request (AlreadyExists): ") || strings.Contains(errOut, "rpc error") || strings.Contains(errOut, "client:") {
		t.Errorf("upload again: exit %d: %s", code, errOut)
	}
	t.Setenv("BLINDFOLD_SIMULATION", "")
	code, _, errOut = runCLI(t, "list")
	if code != exitConnection || !strings.Contains(errOut, "pass --simulation (or set BLINDFOLD_SIMULATION=1)") || strings.Contains(errOut, "WithSimulation") {
		t.Errorf("simulation refused: exit %d: %s", code, errOut)
	}
}

// TestE2ECertificateMismatch: a wrong --host-cert, or the attested port
// given as ADDR, is explained with both fingerprints.
func TestE2ECertificateMismatch(t *testing.T) {
	srv := testserver.Start(t)
	dir := t.TempDir()
	other := filepath.Join(dir, "other.pem")
	otherDER, err := identity.GenerateHostCertificate(other, filepath.Join(dir, "other.key"))
	if err != nil {
		t.Fatal(err)
	}
	serverFP := identity.Fingerprint(srv.HostCertificateDER())
	code, _, errOut := runCLI(t, "info", srv.UntrustedAddr, "--host-cert", other, "--simulation", "--quiet")
	want := "the server's certificate has fingerprint " + serverFP + ", your " + other + " (--host-cert) has " + identity.Fingerprint(otherDER)
	if code != exitConnection || !strings.Contains(errOut, want) || strings.Contains(errOut, "x509") {
		t.Errorf("wrong --host-cert: exit %d\n%s\nwant %q", code, errOut, want)
	}
	code, _, errOut = runCLI(t, "info", srv.AttestedAddr, "--host-cert", srv.HostCertPEM, "--simulation", "--quiet")
	if code != exitConnection || !strings.Contains(errOut, identity.Fingerprint(srv.AttestedCertificateDER())) || !strings.Contains(errOut, "names the server's attested port") {
		t.Errorf("attested port as ADDR: exit %d\n%s", code, errOut)
	}
}

// TestE2EProfile: profile save pins the certificate's fingerprint and the
// ports; later commands need neither ADDR nor connection flags.
func TestE2EProfile(t *testing.T) {
	srv := testserver.Start(t)
	code, out, errOut := runCLI(t, "profile", "save", "local", srv.UntrustedAddr, "--host-cert", srv.HostCertPEM, "--simulation", "--quiet")
	if code != exitOK || !strings.Contains(out, identity.Fingerprint(srv.HostCertificateDER())+" (pinned)") || !strings.Contains(out, "current profile:      local") {
		t.Fatalf("profile save: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Cleanup(func() { os.Remove(os.Getenv(profilesEnv)) })
	if code, out, errOut := runCLI(t, "info", "--quiet"); code != exitOK || !strings.Contains(out, "attested port:         "+srv.AttestedAddr) {
		t.Fatalf("info from the profile: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, _ := runCLI(t, "profile", "list"); code != exitOK || !strings.Contains(out, "* local") {
		t.Fatalf("profile list: %d %s", code, out)
	}
	// A flag still wins over the profile.
	if code, _, errOut := runCLI(t, "info", "--quiet", "--attested-port", "1"); code != exitConnection || !strings.Contains(errOut, "127.0.0.1:1") {
		t.Fatalf("--attested-port over the profile: exit %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "info", "--profile", "nope"); code != exitUsage || !strings.Contains(errOut, `no profile "nope"`) {
		t.Fatalf("unknown profile: exit %d %s", code, errOut)
	}
}

// TestE2ETokenWording: a missing token is explained with the variable and
// the flag, not gRPC metadata.
func TestE2ETokenWording(t *testing.T) {
	dir := t.TempDir()
	pub := filepath.Join(dir, "issuer.pub")
	if code, _, errOut := runCLI(t, "token", "keygen", "--key", filepath.Join(dir, "issuer.key"), "--pub", pub); code != 0 {
		t.Fatal(errOut)
	}
	srv := testserver.Start(t, func(c *server.Config) {
		c.Auth = server.AuthRequired
		c.AuthKeys = []string{pub}
	})
	code, _, errOut := runCLI(t, "list", srv.UntrustedAddr, "--host-cert", srv.HostCertPEM, "--simulation", "--quiet")
	if code != exitServer || !strings.Contains(errOut, "the server requires a token: set BLINDFOLD_TOKEN (or pass --token JWT)") || strings.Contains(errOut, "metadata") {
		t.Errorf("no token: exit %d: %s", code, errOut)
	}
}

// TestCompletionScripts: the scripts are valid shell and offer commands
// and flags.
func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh"} {
		code, out, errOut := runCLI(t, "completion", shell)
		if code != exitOK || !strings.Contains(out, "describe") || !strings.Contains(out, "--attested-port") || strings.Contains(out, "--insecure-test-root-ca") {
			t.Fatalf("completion %s: exit %d %s", shell, code, errOut)
		}
		if shell == "bash" {
			if _, err := exec.LookPath("bash"); err != nil {
				continue
			}
			cmd := exec.Command("bash", "-c", out+`
COMP_WORDS=(blindfold desc); COMP_CWORD=1; _blindfold; echo "${COMPREPLY[@]}"
COMP_WORDS=(blindfold proof verify --allow); COMP_CWORD=3; _blindfold; echo "${COMPREPLY[@]}"
COMP_WORDS=(blindfold list --att); COMP_CWORD=2; _blindfold; echo "${COMPREPLY[@]}"`)
			got, err := cmd.CombinedOutput()
			if err != nil || string(got) != "describe\n--allow-simulation\n--attested-port\n" {
				t.Fatalf("bash completion: %v\n%s", err, got)
			}
		}
	}
	if code, _, _ := runCLI(t, "completion", "fish"); code != exitUsage {
		t.Fatalf("unknown shell: exit %d", code)
	}
}
