package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/engine"
)

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown flag", []string{"--nope"}, 2, "flag provided but not defined"},
		{"stray argument", []string{"serve"}, 2, "unexpected arguments"},
		{"bad size", []string{"--max-model-bytes", "huge"}, 2, "not a size"},
		{"bad config", []string{"--config", "/nonexistent/blindfold.toml"}, 2, "config file"},
		{"invalid value", []string{"--max-models", "0"}, 2, "max_models"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tt.args, &out, &errb); code != tt.code || !strings.Contains(errb.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errb.String(), tt.code, tt.want)
			}
		})
	}
	var out, errb bytes.Buffer
	if code := run([]string{"--version"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "protocol 0.5.0") {
		t.Fatalf("--version: %d %q", code, out.String())
	}
}

// buildServer builds the real binary once for the process tests.
func buildServer(t *testing.T) string {
	t.Helper()
	if _, err := engine.FindLibrary(""); err != nil {
		if os.Getenv("CI") != "" { // CI installs it (scripts/test.sh): missing there is a failure
			t.Fatalf("ONNX Runtime library not found (run scripts/setup-onnxruntime.sh): %v", err)
		}
		t.Skipf("ONNX Runtime library not found (run scripts/setup-onnxruntime.sh): %v", err)
	}
	bin := filepath.Join(t.TempDir(), "blindfold-server")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestRefusesHardwareModeWithoutTEE(t *testing.T) {
	bin := buildServer(t)
	// Without token keys, hardware mode fails closed on the configuration.
	cmd := exec.Command(bin, "--state-dir", t.TempDir(), "--untrusted-addr", "127.0.0.1:0", "--attested-addr", "127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); err == nil || code != 2 || !strings.Contains(string(out), "auth_keys") {
		t.Fatalf("hardware mode without auth keys: exit %d, %s", code, out)
	}
	// With authentication settled, it refuses for want of a TEE.
	cmd = exec.Command(bin, "--auth", "none", "--state-dir", t.TempDir(), "--untrusted-addr", "127.0.0.1:0", "--attested-addr", "127.0.0.1:0")
	out, err = cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 {
		t.Fatalf("exit %d (%v), want 1", code, err)
	}
	if !strings.Contains(string(out), "--simulation") {
		t.Fatalf("the refusal does not say how to run in simulation: %s", out)
	}
}

// TestSIGTERM starts the real server process in simulation mode, checks the
// banner and warning, sends SIGTERM and expects a clean exit.
func TestSIGTERM(t *testing.T) {
	bin := buildServer(t)
	state := t.TempDir()
	cmd := exec.Command(bin, "--simulation", "--state-dir", state, "--untrusted-addr", "127.0.0.1:0", "--attested-addr", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var seen strings.Builder
	deadline := time.After(20 * time.Second)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("server exited before serving:\n%s", seen.String())
			}
			seen.WriteString(l + "\n")
			if strings.Contains(l, "msg=serving") {
				break wait
			}
		case <-deadline:
			t.Fatalf("server did not start:\n%s", seen.String())
		}
	}
	for _, want := range []string{"SIMULATION MODE - NO TEE", "level=WARN msg=\"SIMULATION MODE", "sha256="} {
		if !strings.Contains(seen.String(), want) {
			t.Errorf("start-up output lacks %q:\n%s", want, seen.String())
		}
	}
	if _, err := os.Stat(filepath.Join(state, "host_server.key")); err != nil {
		t.Errorf("no generated operator key: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(state, "host_server.key")); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("generated key has mode %v, want 0600", fi.Mode().Perm())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for l := range lines {
			seen.WriteString(l + "\n")
		}
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("server exit after SIGTERM: %v\n%s", err, seen.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("server did not stop within 20 s of SIGTERM")
	}
	if !strings.Contains(seen.String(), "msg=stopped") {
		t.Fatalf("no clean stop logged:\n%s", seen.String())
	}
}
