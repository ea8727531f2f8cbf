package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/server"
	"github.com/blindfold-ai/blindfold/tensor"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startIn starts a server on state, capturing its logs.
func startIn(t *testing.T, state string) (*testserver.Server, *blindai, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	ts := testserver.StartWithLogger(t, slog.New(slog.NewTextHandler(logs, nil)), func(c *server.Config) { c.StateDir = state })
	return ts, connectLikeBlindAI(t, ts), logs
}

func (b *blindai) uploadSaved(t *testing.T, model []byte, id string) {
	t.Helper()
	stream, err := b.ex.SendModel(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(model); off += chunkSize {
		if err := stream.Send(&securedexchange.SendModelRequest{Data: model[off:min(off+chunkSize, len(model))], Length: uint64(len(model)), ModelId: id, SaveModel: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		t.Fatalf("saving %s: %v", id, err)
	}
}

// assertNoPlaintext searches every file under dir for a slice of model.
func assertNoPlaintext(t *testing.T, dir string, model []byte) {
	t.Helper()
	probe := model[len(model)/2 : len(model)/2+48]
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, _ := os.ReadFile(p)
		if bytes.Contains(data, probe) {
			t.Errorf("%s holds plaintext model bytes", p)
		}
		return nil
	})
}

func TestSavedModelsSurviveRestart(t *testing.T) {
	state := t.TempDir()
	names := []string{"mlp.onnx", "cnn.onnx", "multi.onnx"}
	r := rand.New(rand.NewPCG(9, 9))
	ts, b, _ := startIn(t, state)
	type saved struct {
		inputs []tensor.Tensor
		out    []*securedexchange.TensorData
	}
	want := map[string]saved{}
	for _, n := range names {
		model := testserver.Model(t, n)
		b.uploadSaved(t, model, n)
		in := randomInputs(t, r, modelSpecs(t, ts.Runtime, model), 2)
		run, _, _, err := b.run(context.Background(), n, in, false)
		if err != nil {
			t.Fatal(err)
		}
		want[n] = saved{in, run.OutputTensors}
		assertNoPlaintext(t, state, model)
	}
	// An unsaved model must not come back.
	if _, _, _, err := b.upload(context.Background(), testserver.Model(t, "demo.onnx"), "unsaved", false); err != nil {
		t.Fatal(err)
	}
	if err := ts.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	_, b2, logs := startIn(t, state)
	for _, n := range names {
		run, _, _, err := b2.run(context.Background(), n, want[n].inputs, false)
		if err != nil {
			t.Fatalf("%s after restart: %v\n%s", n, err, logs)
		}
		for i, o := range want[n].out {
			if !bytes.Equal(run.OutputTensors[i].BytesData, o.BytesData) {
				t.Fatalf("%s: output %d differs after restart", n, i)
			}
		}
	}
	if _, _, _, err := b2.run(context.Background(), "unsaved", nil, false); err == nil {
		t.Fatal("an unsaved model came back after restart")
	}
	// Deleting removes the sealed file: it does not come back either.
	if _, err := b2.ex.DeleteModel(context.Background(), &securedexchange.DeleteModelRequest{ModelId: "cnn.onnx"}); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(state, "models", "*.sealed"))
	if len(files) != 2 {
		t.Fatalf("%d sealed files after deleting one of three", len(files))
	}
}

func TestCorruptSealedFileSkipped(t *testing.T) {
	state := t.TempDir()
	ts, b, _ := startIn(t, state)
	b.uploadSaved(t, testserver.Model(t, "mlp.onnx"), "good")
	b.uploadSaved(t, testserver.Model(t, "cnn.onnx"), "flipped")
	b.uploadSaved(t, testserver.Model(t, "demo.onnx"), "renamed")
	ts.Shutdown(context.Background())

	dir := filepath.Join(state, "models")
	files, _ := filepath.Glob(filepath.Join(dir, "*.sealed"))
	byID := map[string]string{}
	for _, f := range files {
		data, _ := os.ReadFile(f)
		for _, id := range []string{"good", "flipped", "renamed"} {
			if bytes.Contains(data, []byte(`"model_id":"`+id+`"`)) {
				byID[id] = f
			}
		}
	}
	data, _ := os.ReadFile(byID["flipped"])
	data[len(data)-100] ^= 0x04 // one bit in the last segment
	os.WriteFile(byID["flipped"], data, 0o600)
	os.Rename(byID["renamed"], filepath.Join(dir, strings.Repeat("0", 64)+".sealed"))
	os.WriteFile(filepath.Join(dir, ".tmp-interrupted"), []byte("half a model"), 0o600)

	_, b2, logs := startIn(t, state)
	if _, _, _, err := b2.run(context.Background(), "good", []tensor.Tensor{f32(t, []int64{1, 4})}, false); err != nil {
		t.Fatalf("the intact model is not served: %v\n%s", err, logs)
	}
	for _, id := range []string{"flipped", "renamed"} {
		if _, _, _, err := b2.run(context.Background(), id, nil, false); err == nil {
			t.Fatalf("%s was loaded", id)
		}
	}
	for _, want := range []string{"skipping sealed model", "does not authenticate", "does not match its model id", "interrupted upload", "loaded=1 skipped=2"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("start-up log lacks %q:\n%s", want, logs)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-interrupted")); err == nil {
		t.Error("leftover temporary file not removed")
	}
}

func TestSealedUnderAnotherKey(t *testing.T) {
	state := t.TempDir()
	ts, b, _ := startIn(t, state)
	b.uploadSaved(t, testserver.Model(t, "mlp.onnx"), "m")
	ts.Shutdown(context.Background())
	key := filepath.Join(state, "sealing.key")
	os.Remove(key)
	os.WriteFile(key, bytes.Repeat([]byte{0x42}, 32), 0o600)
	_, b2, logs := startIn(t, state)
	if _, _, _, err := b2.run(context.Background(), "m", []tensor.Tensor{f32(t, []int64{1, 4})}, false); err == nil {
		t.Fatal("a model sealed under another key was loaded")
	}
	if !strings.Contains(logs.String(), "sealed under another key") {
		t.Fatalf("no clear log line:\n%s", logs)
	}
	// A world-readable key is refused outright.
	os.Chmod(key, 0o644)
	cfg := server.DefaultConfig()
	cfg.Simulation, cfg.StateDir = true, state
	if _, err := server.New(server.Options{Config: cfg, Runtime: testserver.Runtime(t), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("world-readable sealing key: %v", err)
	}
}

// A model saved by an authenticated owner before ids were per owner sits
// in a file named after its id alone. It still loads, for its owner, moves
// to its owner's file name, and its delete removes it for good.
func TestLegacySealedFileMigrates(t *testing.T) {
	iss := newIssuer(t)
	state := t.TempDir()
	auth := func(c *server.Config) {
		c.StateDir = state
		c.Auth = server.AuthRequired
		c.AuthKeys = []string{filepath.Join(iss.dir, "keys.pem")}
	}
	alice := bearer(iss.token(t, jwt.SigningMethodES256, "alice", time.Hour))
	ts, b := startAuthServer(t, iss, auth)
	model := testserver.Model(t, "mlp.onnx")
	stream, err := b.ex.SendModel(alice)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&securedexchange.SendModelRequest{Data: model, Length: uint64(len(model)), ModelId: "kept", SaveModel: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}
	if err := ts.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Rename the file to the old naming (SHA-256 of the id alone).
	files, _ := filepath.Glob(filepath.Join(state, "models", "*.sealed"))
	if len(files) != 1 {
		t.Fatalf("%d sealed files", len(files))
	}
	sum := sha256.Sum256([]byte("kept"))
	legacy := filepath.Join(state, "models", hex.EncodeToString(sum[:])+".sealed")
	if err := os.Rename(files[0], legacy); err != nil {
		t.Fatal(err)
	}

	_, b2 := startAuthServer(t, iss, auth)
	if _, _, _, err := b2.run(alice, "kept", []tensor.Tensor{f32(t, []int64{1, 4})}, false); err != nil {
		t.Fatalf("the legacy sealed model is lost: %v", err)
	}
	if _, err := os.Stat(legacy); !os.IsNotExist(err) {
		t.Fatalf("the legacy file is still there: %v", err)
	}
	if _, err := b2.ex.DeleteModel(alice, &securedexchange.DeleteModelRequest{ModelId: "kept"}); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(state, "models", "*.sealed")); len(left) != 0 {
		t.Fatalf("sealed files left after delete: %v", left)
	}
}
