package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/internal/onnxgen"
)

// TestWorkDir: the server process works in an empty folder of its own
// (state_dir/empty by default, mode 0700), not in the folder it was
// started from, so no file is reachable by a relative path; and a model
// naming a file of the start folder or of the state folder as external
// data is refused without its bytes or any sign of the file.
func TestWorkDir(t *testing.T) {
	bin := buildServer(t)
	start := t.TempDir()
	state := filepath.Join(start, "state")
	secret := bytes.Repeat([]byte("CANARY!"), 100)
	if err := os.WriteFile(filepath.Join(start, "canary.bin"), secret, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProcIn(t, bin, "state", start) // a relative state_dir, resolved against the start folder
	p.state = state
	cwd, err := os.Readlink("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/cwd")
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(state, "empty")
	if cwd != want {
		t.Fatalf("the server works in %s, want %s", cwd, want)
	}
	fi, err := os.Stat(want)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("work folder mode %v, want 0700", fi.Mode().Perm())
	}
	if err := os.WriteFile(filepath.Join(state, "canary.bin"), secret, 0o600); err != nil {
		t.Fatal(err)
	}
	c := p.connect(t)
	ctx := context.Background()
	for _, loc := range []string{"canary.bin", "state/canary.bin", "../canary.bin", "sealing.key"} {
		model, err := onnxgen.ExternalData(onnxgen.InInitializer, loc, int64(len(secret)))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.UploadModel(ctx, model, client.WithModelID("leak"))
		if status.Code(err) != codes.InvalidArgument || strings.Contains(err.Error(), "canary") || strings.Contains(err.Error(), start) {
			t.Fatalf("external data %s: %v, want INVALID_ARGUMENT without the path", loc, err)
		}
	}
	entries, err := os.ReadDir(want)
	if err != nil || len(entries) != 0 {
		t.Errorf("work folder after serving: %v entries, %v", len(entries), err)
	}
	// A work folder that holds something stops the start.
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(full, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--simulation", "--state-dir", t.TempDir(), "--work-dir", full, "--untrusted-addr", "127.0.0.1:0", "--attested-addr", "127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), "must be empty") {
		t.Fatalf("non-empty work_dir: exit %d (%v), output:\n%s", code, err, out)
	}
}
