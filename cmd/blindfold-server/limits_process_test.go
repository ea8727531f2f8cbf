package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/internal/onnxpb"
	"github.com/blindfold-ai/blindfold/tensor"
)

// These tests attack a real server process over real TLS, where a crash or
// the process's memory is the point: a crash ends the process (not the
// test), and resident memory is read from /proc.

// rawExchange connects to the attested port like a client that follows no
// rules: the generated stubs, with the attested certificate as the root.
func (p *proc) rawExchange(t *testing.T) securedexchange.ExchangeClient {
	t.Helper()
	c := p.connect(t)
	cert, err := x509.ParseCertificate(c.AttestedCertificate())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	conn, err := grpc.NewClient(c.AttestedAddr(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "blindai-srv"})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return securedexchange.NewExchangeClient(conn)
}

// rss returns the process's resident memory in bytes.
func (p *proc) rss(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}

// alive fails the test if the process has exited, and checks that it still
// serves a run.
func (p *proc) alive(t *testing.T, c *client.Client) {
	t.Helper()
	select {
	case <-p.exited:
		t.Fatalf("the server process died:\n%s", p.logs())
	default:
	}
	mlp, _ := onnxgen.MLP()
	id := fmt.Sprintf("alive-%d", time.Now().UnixNano())
	if _, err := c.UploadModel(context.Background(), mlp, client.WithModelID(id)); err != nil {
		t.Fatalf("the server no longer serves uploads: %v\n%s", err, p.logs())
	}
	x, _ := tensor.New("x", []int64{1, 4}, []float32{1, 2, 3, 4})
	if _, err := c.Run(context.Background(), id, []tensor.Tensor{x}); err != nil {
		t.Fatalf("the server no longer serves runs: %v\n%s", err, p.logs())
	}
	if err := c.DeleteModel(context.Background(), id); err != nil {
		t.Fatal(err)
	}
}

func upload(t *testing.T, c *client.Client, id string, model []byte) {
	t.Helper()
	if _, err := c.UploadModel(context.Background(), model, client.WithModelID(id)); err != nil {
		t.Fatalf("uploading %s: %v", id, err)
	}
}

// A 2^39-element float16 output: the engine used to allocate it in Go from
// the declared shape, before the run and unbounded, and the Go runtime's
// "out of memory" ended the process. Now it is refused before anything is
// allocated, and the server goes on.
func TestHugeHalfOutputRefused(t *testing.T) {
	g := onnxgen.NewGraph("expand_half")
	g.Input("x", tensor.F16, onnxgen.Fixed(1))
	g.Output("y", tensor.F16, onnxgen.Fixed(1<<39))
	g.Int64s("shape", []int64{1}, []int64{1 << 39})
	g.Node("Expand", []string{"x", "shape"}, []string{"y"})
	model, err := g.Model()
	if err != nil {
		t.Fatal(err)
	}
	p := startProc(t, buildServer(t), t.TempDir())
	c := p.connect(t)
	upload(t, c, "expand", model)
	x, _ := tensor.FromBits("x", tensor.F16, []int64{1}, []uint16{0x3C00})
	before := p.rss(t)
	_, err = c.Run(context.Background(), "expand", []tensor.Tensor{x})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "max_reply_bytes") {
		t.Fatalf("run: %v, want RESOURCE_EXHAUSTED naming max_reply_bytes", err)
	}
	if grew := p.rss(t) - before; grew > 64<<20 {
		t.Errorf("resident memory grew by %d MiB for a refused run", grew>>20)
	}
	p.alive(t, c)
}

// Twelve streams that each declare a 256 MiB input for a float32[1] model,
// send 4 bytes and wait: the declared shape is checked against the model
// before anything is allocated, so resident memory stays put.
func TestHugeDeclaredDimsDoNotAllocate(t *testing.T) {
	g := onnxgen.NewGraph("tiny")
	g.Input("x", tensor.F32, onnxgen.Fixed(1))
	g.Output("y", tensor.F32, onnxgen.Fixed(1))
	g.Node("Identity", []string{"x"}, []string{"y"})
	model, err := g.Model()
	if err != nil {
		t.Fatal(err)
	}
	p := startProc(t, buildServer(t), t.TempDir())
	c := p.connect(t)
	upload(t, c, "tiny", model)
	ex := p.rawExchange(t)
	before := p.rss(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream, err := ex.RunModel(ctx)
			if err != nil {
				errs <- err
				return
			}
			err = stream.Send(&securedexchange.RunModelRequest{ModelId: "tiny", InputTensors: []*securedexchange.TensorData{{
				Info:      &securedexchange.TensorInfo{Dims: []int32{1 << 26}, DatumType: securedexchange.DatumTypeEnum_F32},
				BytesData: []byte{0, 0, 128, 63},
			}}})
			if err != nil {
				errs <- err
				return
			}
			_, err = stream.CloseAndRecv() // the server answers without waiting for more
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "the model expects 1") {
			t.Errorf("stream: %v, want INVALID_ARGUMENT saying the model expects 1", err)
		}
	}
	if grew := p.rss(t) - before; grew > 64<<20 {
		t.Errorf("resident memory grew by %d MiB (limit 64 MiB)", grew>>20)
	}
	p.alive(t, c)
}

// Four uploads that each declare close to 1 GiB, send 10 bytes and go
// silent used to hold their reservations forever, refusing every other
// upload. The progress timeout cuts them and gives everything back.
func TestSilentUploadCut(t *testing.T) {
	// A 4 GiB memory budget, whatever the machine's default (half its RAM).
	p := startProc(t, buildServer(t), t.TempDir(), "--stream-progress-timeout", "2s", "--max-total-model-bytes", "4GiB")
	c := p.connect(t)
	ex := p.rawExchange(t)
	before := p.rss(t)
	type result struct {
		err     error
		elapsed time.Duration
	}
	results := make(chan result, 4)
	for i := range 4 {
		go func() {
			start := time.Now()
			stream, err := ex.SendModel(context.Background())
			if err == nil {
				err = stream.Send(&securedexchange.SendModelRequest{ModelId: fmt.Sprintf("silent-%d", i), Length: 1 << 30, Data: make([]byte, 10)})
			}
			if err == nil {
				err = stream.RecvMsg(new(securedexchange.SendModelReply)) // the server's answer, without ending the stream
			}
			results <- result{err, time.Since(start)}
		}()
	}
	// Meanwhile their reservations hold the whole 4 GiB cap.
	time.Sleep(500 * time.Millisecond)
	mlp, _ := onnxgen.MLP()
	if _, err := c.UploadModel(context.Background(), mlp, client.WithModelID("meanwhile")); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("an upload while the silent ones hold the cap: %v, want RESOURCE_EXHAUSTED (else this test proves nothing)", err)
	}
	for range 4 {
		r := <-results
		if status.Code(r.err) != codes.DeadlineExceeded || !strings.Contains(r.err.Error(), "stream_progress_timeout") {
			t.Errorf("silent upload: %v, want DEADLINE_EXCEEDED naming stream_progress_timeout", r.err)
		}
		if r.elapsed > 15*time.Second {
			t.Errorf("silent upload cut after %v, want about 2s", r.elapsed)
		}
	}
	if grew := p.rss(t) - before; grew > 64<<20 {
		t.Errorf("resident memory grew by %d MiB (releasing must not touch the declared size)", grew>>20)
	}
	p.alive(t, c) // its upload needs the room the silent ones held
}

// A Loop of 2^62 iterations, run by a client with no deadline, is stopped
// inside ONNX Runtime by the server's own max_run_time.
func TestEndlessLoopStoppedByMaxRunTime(t *testing.T) {
	body := onnxgen.NewGraph("body")
	body.Input("i", tensor.I64)
	body.Input("cond_in", tensor.Bool)
	body.Input("v_in", tensor.F32, onnxgen.Fixed(1))
	body.Output("cond_out", tensor.Bool)
	body.Output("v_out", tensor.F32, onnxgen.Fixed(1))
	body.Node("Identity", []string{"cond_in"}, []string{"cond_out"})
	body.Node("Identity", []string{"v_in"}, []string{"v_out"})
	bp, err := body.Proto()
	if err != nil {
		t.Fatal(err)
	}
	g := onnxgen.NewGraph("endless")
	g.Input("x", tensor.F32, onnxgen.Fixed(1))
	g.Output("y", tensor.F32, onnxgen.Fixed(1))
	g.Int64s("trips", nil, []int64{1 << 62})
	cond, _ := tensor.New("cond", []int64{}, []bool{true})
	g.Initializer(cond)
	g.Node("Loop", []string{"trips", "cond", "x"}, []string{"y"}, &onnxpb.AttributeProto{
		Name: proto.String("body"), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: bp.Graph,
	})
	model, err := g.Model()
	if err != nil {
		t.Fatal(err)
	}
	p := startProc(t, buildServer(t), t.TempDir(), "--max-run-time", "2s")
	c := p.connect(t)
	upload(t, c, "endless", model)
	x, _ := tensor.New("x", []int64{1}, []float32{1})
	start := time.Now()
	_, err = c.Run(context.Background(), "endless", []tensor.Tensor{x})
	elapsed := time.Since(start)
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "max_run_time") {
		t.Fatalf("endless loop: %v, want DEADLINE_EXCEEDED naming max_run_time", err)
	}
	if elapsed < 2*time.Second || elapsed > 30*time.Second {
		t.Errorf("stopped after %v, want soon after 2s", elapsed)
	}
	p.alive(t, c)
}
