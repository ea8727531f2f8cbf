//go:build cgo

// End-to-end tests against a real in-process server (internal/testserver,
// which needs the cgo engine and the ONNX Runtime library).

package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/proof"
	"github.com/blindfold-ai/blindfold/tensor"
)

func attestedPort(t *testing.T, srv *testserver.Server) int {
	t.Helper()
	_, p, err := client.SplitAddr(srv.AttestedAddr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// logBuffer is a concurrency-safe log sink for asserting warnings.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func connect(t *testing.T, srv *testserver.Server, extra ...client.Option) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts := append([]client.Option{
		client.WithHostCertificateFile(srv.HostCertPEM),
		client.WithSimulation(),
		client.WithAttestedPort(attestedPort(t, srv)),
		client.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	}, extra...)
	c, err := client.Connect(ctx, srv.UntrustedAddr, opts...)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestE2EConnect(t *testing.T) {
	srv := testserver.Start(t)
	port := attestedPort(t, srv)
	hostCert, err := identity.LoadCertificatePEM(srv.HostCertPEM)
	if err != nil {
		t.Fatal(err)
	}
	otherDir := t.TempDir()
	otherPEM := filepath.Join(otherDir, "other.pem")
	if _, err := identity.GenerateHostCertificate(otherPEM, filepath.Join(otherDir, "other.key")); err != nil {
		t.Fatal(err)
	}
	quiet := client.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	tests := []struct {
		name    string
		opts    []client.Option
		is      error
		code    codes.Code
		wantLog string
	}{
		{"pinned host certificate", []client.Option{client.WithHostCertificateFile(srv.HostCertPEM), client.WithSimulation()}, nil, codes.OK, "SIMULATION MODE"},
		{"host certificate as DER", []client.Option{client.WithHostCertificate(hostCert.Raw), client.WithSimulation()}, nil, codes.OK, "SIMULATION MODE"},
		{"trust on first use", []client.Option{client.WithInsecureTrustOnFirstUse(), client.WithSimulation()}, nil, codes.OK, "INSECURE"},
		{"simulation not accepted", []client.Option{client.WithHostCertificateFile(srv.HostCertPEM)}, client.ErrSimulationServer, codes.Unknown, ""},
		{"other host certificate", []client.Option{client.WithHostCertificateFile(otherPEM), client.WithSimulation()}, nil, codes.Unavailable, ""},
		{"wrong attested port", []client.Option{client.WithHostCertificateFile(srv.HostCertPEM), client.WithSimulation(), client.WithAttestedPort(attestedPortOf(t, srv.UntrustedAddr))}, client.ErrTrust, codes.Unknown, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuffer
			opts := append([]client.Option{client.WithAttestedPort(port), client.WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))}, tc.opts...)
			if tc.wantLog == "" {
				opts = append(opts, quiet)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := client.Connect(ctx, srv.UntrustedAddr, opts...)
			if tc.is == nil && tc.code == codes.OK {
				if err != nil {
					t.Fatalf("Connect: %v", err)
				}
				defer c.Close()
				info := c.ServerInfo()
				if info.ProtocolVersion != "0.5.0" || !info.Simulation || info.ServerVersion == "" || !c.Simulation() {
					t.Errorf("server info %+v, simulation %v", info, c.Simulation())
				}
				if c.HostCertificateFingerprint() != identity.Fingerprint(hostCert.Raw) {
					t.Errorf("host fingerprint %s, want %s", c.HostCertificateFingerprint(), identity.Fingerprint(hostCert.Raw))
				}
				if len(c.SigningKey()) != 32 || c.AttestedCertificateFingerprint() != identity.Fingerprint(c.AttestedCertificate()) {
					t.Errorf("signing key or attested certificate missing")
				}
				if !strings.Contains(logs.String(), tc.wantLog) {
					t.Errorf("log lacks %q:\n%s", tc.wantLog, logs.String())
				}
				return
			}
			if err == nil {
				c.Close()
				t.Fatal("Connect succeeded")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if tc.code != codes.Unknown && status.Code(err) != tc.code {
				t.Errorf("error %v has code %v, want %v", err, status.Code(err), tc.code)
			}
		})
	}
}

// attestedPortOf returns the port of addr (used to point the attested
// connection at the untrusted port, whose certificate is not the attested
// one).
func attestedPortOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := client.SplitAddr(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// identityInput makes an [n,3] tensor of d with varied values.
func identityInput(t *testing.T, d tensor.DType, n int64) tensor.Tensor {
	t.Helper()
	size, err := tensor.ByteSize(d, []int64{n, 3})
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*31 + 7)
		if d == tensor.Bool {
			data[i] = byte(i % 2)
		}
	}
	if d == tensor.F32 || d == tensor.F64 || d == tensor.F16 || d == tensor.BF16 {
		// Keep floats finite and non-NaN so that a copy is bit-exact
		// regardless of NaN canonicalisation.
		for i := range data {
			data[i] &= 0x3f
		}
	}
	return tensor.Tensor{Name: "x", DType: d, Shape: []int64{n, 3}, Data: data}
}

func TestE2EIdentityAllTypes(t *testing.T) {
	srv := testserver.Start(t)
	c := connect(t, srv)
	ctx := context.Background()
	for _, d := range tensor.DTypes() {
		t.Run(d.String(), func(t *testing.T) {
			model := testserver.Model(t, "identity_"+d.String()+".onnx")
			up, err := c.UploadModel(ctx, model, client.WithModelID("id-"+d.String()))
			if err != nil {
				t.Fatalf("UploadModel: %v", err)
			}
			sum := sha256.Sum256(model)
			if up.ModelID != "id-"+d.String() || !bytes.Equal(up.ModelHash, sum[:]) || up.Signed || up.Proof() != nil {
				t.Fatalf("upload result %+v", up)
			}
			if len(up.Inputs) != 1 || up.Inputs[0].Name != "x" || up.Inputs[0].DType != d {
				t.Fatalf("reported inputs %v", up.Inputs)
			}
			in := identityInput(t, d, 5000) // > 32 KiB for most types: several chunks
			for _, opts := range [][]client.RunOption{nil, {client.ByName()}, {client.WithChunkSize(7)}} {
				res, err := c.Run(ctx, up.ModelID, []tensor.Tensor{in}, opts...)
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				if len(res.Outputs) != 1 {
					t.Fatalf("%d outputs", len(res.Outputs))
				}
				out := res.Outputs[0]
				if out.Name != "y" || out.DType != d || fmt.Sprint(out.Shape) != "[5000 3]" || !bytes.Equal(out.Data, in.Data) {
					t.Fatalf("output %s %s%v differs from the input", out.Name, out.DType, out.Shape)
				}
				if res.Signed || res.Proof() != nil || res.SaveProof(filepath.Join(t.TempDir(), "p")) == nil {
					t.Fatal("unsigned run claims a proof")
				}
			}
			if err := c.DeleteModel(ctx, up.ModelID); err != nil {
				t.Fatalf("DeleteModel: %v", err)
			}
			_, err = c.Run(ctx, up.ModelID, []tensor.Tensor{in})
			if status.Code(err) != codes.NotFound {
				t.Fatalf("Run after delete: %v (code %v), want NotFound", err, status.Code(err))
			}
		})
	}
}

func TestE2ESignedRunAndProof(t *testing.T) {
	srv := testserver.Start(t)
	c := connect(t, srv)
	ctx := context.Background()
	model := testserver.Model(t, "mlp.onnx")
	var progress []int64
	up, err := c.UploadModel(ctx, model, client.Sign(), client.WithModelName("mlp"), client.WithChunkSize(1000),
		client.WithProgress(func(sent, total int64) {
			if total != int64(len(model)) {
				t.Errorf("progress total %d, want %d", total, len(model))
			}
			progress = append(progress, sent)
		}))
	if err != nil {
		t.Fatalf("UploadModel: %v", err)
	}
	if up.ModelID != "mlp" || !up.Signed || up.Proof() == nil {
		t.Fatalf("upload result %+v", up)
	}
	if want := (len(model) + 999) / 1000; len(progress) != want || progress[len(progress)-1] != int64(len(model)) {
		t.Fatalf("progress calls %v, want %d ending at %d", progress, want, len(model))
	}
	// The upload proof verifies offline too.
	sendProof := filepath.Join(t.TempDir(), "send.proof")
	if err := up.SaveProof(sendProof); err != nil {
		t.Fatal(err)
	}
	sp, err := proof.ReadFile(sendProof)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := proof.Verify(sp, proof.VerifyOptions{AllowSimulation: true, ModelHash: proof.ModelHash(model), ModelID: "mlp"}); err != nil {
		t.Fatalf("upload proof: %v", err)
	}

	x := []float32{0.5, -1, 2, 0.25, 1, 1, -1, -2}
	in, err := tensor.New("x", []int64{2, 4}, x)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(ctx, "mlp", []tensor.Tensor{in}, client.Sign())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := onnxgen.MLPWeights().Forward(x, 2)
	got, err := tensor.Values[float32](res.Outputs[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-4 {
			t.Fatalf("output %v, want %v", got, want)
		}
	}
	sum := sha256.Sum256(in.Data)
	if !res.Signed || !bytes.Equal(res.InputHash, sum[:]) || res.IssuedAt.IsZero() || res.InferenceTime <= 0 {
		t.Fatalf("run result: signed %v hash %x issued %v time %v", res.Signed, res.InputHash, res.IssuedAt, res.InferenceTime)
	}
	path := filepath.Join(t.TempDir(), "run.proof")
	if err := res.SaveProof(path); err != nil {
		t.Fatal(err)
	}
	p, err := proof.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	other, err := tensor.New("x", []int64{2, 4}, []float32{0.5, -1, 2, 0.25, 1, 1, -1, -2.5})
	if err != nil {
		t.Fatal(err)
	}
	otherSum := sha256.Sum256(other.Data)
	tests := []struct {
		name string
		opts proof.VerifyOptions
		is   error
	}{
		{"verifies", proof.VerifyOptions{AllowSimulation: true, InputHash: sum[:], ModelID: "mlp"}, nil},
		{"with the certificate the client saw", proof.VerifyOptions{AllowSimulation: true, SimulationCertificate: c.AttestedCertificate()}, nil},
		{"simulation not allowed", proof.VerifyOptions{}, proof.ErrSimulationProof},
		{"other input", proof.VerifyOptions{AllowSimulation: true, InputHash: otherSum[:]}, nil},
		{"other model", proof.VerifyOptions{AllowSimulation: true, ModelID: "demo"}, nil},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := proof.Verify(p, tc.opts)
			if i < 2 {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if r.Kind != proof.KindRunModel || r.ModelID != "mlp" || !r.Simulation {
					t.Fatalf("result %+v", r)
				}
				return
			}
			if err == nil {
				t.Fatal("Verify accepted")
			}
			var me *proof.MismatchError
			if tc.is != nil && !errors.Is(err, tc.is) || tc.is == nil && !errors.As(err, &me) {
				t.Fatalf("error %v", err)
			}
		})
	}
}

func TestE2EMultiInputsAndErrors(t *testing.T) {
	srv := testserver.Start(t)
	c := connect(t, srv)
	ctx := context.Background()
	if _, err := c.UploadModel(ctx, testserver.Model(t, "multi.onnx"), client.WithModelID("multi"), client.Sign(), client.SaveModel()); err != nil {
		t.Fatal(err)
	}
	a, _ := tensor.New("a", []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	b, _ := tensor.New("b", []int64{3}, []int64{7, -8, 9})
	mask, _ := tensor.New("mask", []int64{2, 3}, []bool{true, false, true, false, true, false})
	// By name, in another order than the model declares.
	res, err := c.Run(ctx, "multi", []tensor.Tensor{mask, a, b}, client.ByName(), client.Sign())
	if err != nil {
		t.Fatalf("Run by name: %v", err)
	}
	names := []string{}
	for _, o := range res.Outputs {
		names = append(names, o.Name)
	}
	if strings.Join(names, ",") != "where,b32,notmask,total" {
		t.Fatalf("outputs %v", names)
	}
	total, ok := res.Output("total")
	if v, err := tensor.Values[float64](total); !ok || err != nil || len(total.Shape) != 0 || v[0] != 21 {
		t.Fatalf("total %+v %v", total, err)
	}
	b32, _ := res.Output("b32")
	if v, err := tensor.Values[int32](b32); err != nil || fmt.Sprint(v) != "[7 -8 9]" {
		t.Fatalf("b32 %v %v", v, err)
	}

	tests := []struct {
		name   string
		run    func() error
		code   codes.Code
		is     error
		substr string
	}{
		{"unknown model", func() error { _, err := c.Run(ctx, "nope", []tensor.Tensor{a}); return err }, codes.NotFound, nil, "nope"},
		{"wrong type by position", func() error { _, err := c.Run(ctx, "multi", []tensor.Tensor{b, a, mask}); return err }, codes.InvalidArgument, nil, ""},
		{"duplicate id", func() error {
			_, err := c.UploadModel(ctx, testserver.Model(t, "multi.onnx"), client.WithModelID("multi"))
			return err
		}, codes.AlreadyExists, nil, ""},
		{"not a model", func() error { _, err := c.UploadModel(ctx, []byte("garbage"), client.WithModelID("g")); return err }, codes.InvalidArgument, nil, ""},
		{"delete unknown", func() error { return c.DeleteModel(ctx, "nope") }, codes.NotFound, nil, ""},
		{"empty model", func() error { _, err := c.UploadModel(ctx, nil); return err }, codes.Unknown, nil, "empty"},
		{"unnamed input by name", func() error {
			_, err := c.Run(ctx, "multi", []tensor.Tensor{{DType: tensor.F32, Shape: []int64{1}, Data: make([]byte, 4)}}, client.ByName())
			return err
		}, codes.Unknown, nil, "no name"},
		{"invalid tensor", func() error {
			_, err := c.Run(ctx, "multi", []tensor.Tensor{{DType: tensor.F32, Shape: []int64{2}, Data: make([]byte, 4)}})
			return err
		}, codes.Unknown, nil, "needs 8 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil {
				t.Fatal("no error")
			}
			if status.Code(err) != tc.code {
				t.Errorf("code %v, want %v (%v)", status.Code(err), tc.code, err)
			}
			if !strings.Contains(err.Error(), tc.substr) {
				t.Errorf("error %q lacks %q", err, tc.substr)
			}
		})
	}
}

func TestE2EConcurrentUse(t *testing.T) {
	srv := testserver.Start(t)
	c := connect(t, srv)
	ctx := context.Background()
	if _, err := c.UploadModel(ctx, testserver.Model(t, "demo.onnx"), client.WithModelID("demo")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in, _ := tensor.New("features", []int64{1, 4}, []float32{float32(i), 1, 2, 3})
			res, err := c.Run(ctx, "demo", []tensor.Tensor{in}, client.Sign())
			if err != nil {
				errs <- err
				return
			}
			p, _ := tensor.Values[float32](res.Outputs[0])
			if s := p[0] + p[1] + p[2]; math.Abs(float64(s)-1) > 1e-5 {
				errs <- fmt.Errorf("probabilities %v do not sum to 1", p)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(replicaEnv); spec != "" {
		os.Exit(runReplica(spec))
	}
	stop, ok := startExampleServer()
	if !ok {
		fmt.Fprintln(os.Stderr, "client examples: ONNX Runtime not found; the examples that need a server will fail (run scripts/setup-onnxruntime.sh)")
	}
	code := m.Run()
	stop()
	os.Exit(code)
}
