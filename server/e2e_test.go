package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/api/untrusted"
	"github.com/blindfold-ai/blindfold/engine"
	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/tensor"
)

// chunkSize and maxRecv are what a BlindAI 0.5 client uses.
const (
	chunkSize = 32 << 10
	maxRecv   = 1 << 23
)

// blindai is a connection made the way a BlindAI 0.5 Python client makes
// it in simulation mode, using only the generated stubs.
type blindai struct {
	info    *untrusted.GetServerInfoReply
	ex      securedexchange.ExchangeClient
	signKey ed25519.PublicKey
}

// connectLikeBlindAI: trust on first use of the untrusted port's
// certificate, server name overridden to blindai-srv, GetServerInfo and a
// 0.5.x version check, GetCertificate, that certificate as the sole root of
// the attested port, 8 MiB receive limit, signing key from OID 1.3.6.1.3.2.
func connectLikeBlindAI(t testing.TB, ts *testserver.Server) *blindai {
	t.Helper()
	// 1. TOFU: fetch the untrusted port's certificate without checking it.
	raw, err := tls.Dial("tcp", ts.UntrustedAddr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	hostCert := raw.ConnectionState().PeerCertificates[0]
	raw.Close()
	pool := x509.NewCertPool()
	pool.AddCert(hostCert)
	uconn, err := grpc.NewClient(ts.UntrustedAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "blindai-srv"})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uconn.Close() })
	att := untrusted.NewAttestationClient(uconn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// 2. Version check, component by component.
	info, err := att.GetServerInfo(ctx, &untrusted.GetServerInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(info.Version, ".")
	if len(parts) != 3 || parts[0] != "0" || parts[1] != "5" {
		t.Fatalf("server version %q is not 0.5.x", info.Version)
	}
	if _, err := strconv.Atoi(parts[2]); err != nil {
		t.Fatalf("server version %q: patch is not a number", info.Version)
	}
	// 3. Simulation: GetCertificate, and that certificate as the only root.
	certReply, err := att.GetCertificate(ctx, &untrusted.GetCertificateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(certReply.EnclaveTlsCertificate)
	if err != nil {
		t.Fatal(err)
	}
	var key ed25519.PublicKey
	for _, e := range cert.Extensions {
		if e.Id.Equal(asn1.ObjectIdentifier{1, 3, 6, 1, 3, 2}) {
			key = ed25519.PublicKey(e.Value)
		}
	}
	if len(key) != ed25519.PublicKeySize {
		t.Fatalf("no 32-byte signing key in extension 1.3.6.1.3.2 (got %d bytes)", len(key))
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	aconn, err := grpc.NewClient(ts.AttestedAddr,
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "blindai-srv"})),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecv)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { aconn.Close() })
	return &blindai{info: info, ex: securedexchange.NewExchangeClient(aconn), signKey: key}
}

// upload sends model in chunks, each carrying the same header fields, as
// the reference client does.
func (b *blindai) upload(ctx context.Context, model []byte, id string, sign bool) (*securedexchange.SendModelPayload, []byte, []byte, error) {
	stream, err := b.ex.SendModel(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	for off := 0; off < len(model) || off == 0; off += chunkSize {
		end := min(off+chunkSize, len(model))
		req := &securedexchange.SendModelRequest{
			Data: model[off:end], Length: uint64(len(model)), Sign: sign, ModelName: id,
			ClientInfo: &securedexchange.ClientInfo{UserAgent: "blindai_python", UserAgentVersion: "0.5.0"},
		}
		if err := stream.Send(req); err != nil {
			break // the server answered early; CloseAndRecv has its status
		}
		if len(model) == 0 {
			break
		}
	}
	reply, err := stream.CloseAndRecv()
	if err != nil {
		return nil, nil, nil, err
	}
	var p securedexchange.Payload
	if err := proto.Unmarshal(reply.Payload, &p); err != nil {
		return nil, nil, nil, err
	}
	return p.GetSendModelPayload(), reply.Payload, reply.Signature, nil
}

// run sends inputs, each split into 32 KiB chunks, by position.
func (b *blindai) run(ctx context.Context, id string, inputs []tensor.Tensor, sign bool) (*securedexchange.RunModelPayload, []byte, []byte, error) {
	stream, err := b.ex.RunModel(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	for i, in := range inputs {
		dims := make([]int32, len(in.Shape))
		for j, d := range in.Shape {
			dims[j] = int32(d)
		}
		for off := 0; off < len(in.Data) || off == 0; off += chunkSize {
			end := min(off+chunkSize, len(in.Data))
			req := &securedexchange.RunModelRequest{ModelId: id, Sign: sign, InputTensors: []*securedexchange.TensorData{{
				Info:      &securedexchange.TensorInfo{Dims: dims, DatumType: securedexchange.DatumTypeEnum(in.DType), Index: int32(i)},
				BytesData: in.Data[off:end],
			}}}
			if err := stream.Send(req); err != nil {
				break
			}
			if len(in.Data) == 0 {
				break
			}
		}
	}
	reply, err := stream.CloseAndRecv()
	if err != nil {
		return nil, nil, nil, err
	}
	var p securedexchange.Payload
	if err := proto.Unmarshal(reply.Payload, &p); err != nil {
		return nil, nil, nil, err
	}
	return p.GetRunModelPayload(), reply.Payload, reply.Signature, nil
}

// randomInputs makes inputs for specs, dynamic dimensions set to dyn.
func randomInputs(t testing.TB, r *rand.Rand, specs []engine.TensorSpec, dyn int64) []tensor.Tensor {
	t.Helper()
	out := make([]tensor.Tensor, len(specs))
	for i, s := range specs {
		shape := make([]int64, len(s.Shape))
		for j, d := range s.Shape {
			if d < 0 {
				d = dyn
			}
			shape[j] = d
		}
		n, err := tensor.ByteSize(s.DType, shape)
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, n)
		switch s.DType {
		case tensor.F32:
			for k := 0; k < len(data); k += 4 {
				binary.LittleEndian.PutUint32(data[k:], math.Float32bits(float32(r.NormFloat64())))
			}
		case tensor.F64:
			for k := 0; k < len(data); k += 8 {
				binary.LittleEndian.PutUint64(data[k:], math.Float64bits(r.NormFloat64()))
			}
		case tensor.Bool:
			for k := range data {
				data[k] = byte(r.IntN(2))
			}
		case tensor.F16, tensor.BF16:
			for k := 0; k < len(data); k += 2 {
				// finite values: exponent below all-ones
				binary.LittleEndian.PutUint16(data[k:], uint16(r.IntN(0x7800))|uint16(r.IntN(2))<<15)
			}
		default:
			for k := range data {
				data[k] = byte(r.Uint32())
			}
		}
		out[i] = tensor.Tensor{Name: s.Name, DType: s.DType, Shape: shape, Data: data}
	}
	return out
}

// direct runs a model through the engine in process.
func direct(t testing.TB, rt *engine.Runtime, model []byte, inputs []tensor.Tensor) []tensor.Tensor {
	t.Helper()
	sess, err := rt.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	outs, err := sess.Run(context.Background(), inputs)
	if err != nil {
		t.Fatal(err)
	}
	return outs
}

func sameOutputs(t testing.TB, got []*securedexchange.TensorData, want []tensor.Tensor) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d outputs, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Info.IndexName != w.Name || g.Info.Index != int32(i) || tensor.DType(g.Info.DatumType) != w.DType {
			t.Fatalf("output %d is %q %v, want %q %v", i, g.Info.IndexName, g.Info.DatumType, w.Name, w.DType)
		}
		if fmt.Sprint(g.Info.Dims) != fmt.Sprint(w.Shape) {
			t.Fatalf("output %q dims %v, want %v", w.Name, g.Info.Dims, w.Shape)
		}
		if !bytes.Equal(g.BytesData, w.Data) {
			t.Fatalf("output %q differs from the engine's own output: got %v, want %v", w.Name, g.BytesData, w.Data)
		}
	}
}

func modelSpecs(t testing.TB, rt *engine.Runtime, model []byte) []engine.TensorSpec {
	t.Helper()
	sess, err := rt.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	return sess.Inputs()
}

// TestBlindAIClientSequence follows a BlindAI 0.5 client call by call,
// with signed replies and the proof checks that client makes.
func TestBlindAIClientSequence(t *testing.T) {
	ts := testserver.Start(t)
	b := connectLikeBlindAI(t, ts)
	if !b.info.Simulation || b.info.ServerVersion == "" {
		t.Fatalf("server info extensions: %+v", b.info)
	}
	ctx := context.Background()
	model := testserver.Model(t, "mlp.onnx")
	up, payload, sig, err := b.upload(ctx, model, "mlp", true)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(b.signKey, payload, sig) {
		t.Fatal("upload reply signature does not verify")
	}
	wantHash := sha256.Sum256(model)
	if !bytes.Equal(up.ModelHash, wantHash[:]) || up.ModelId != "mlp" {
		t.Fatalf("upload payload: hash %x id %q", up.ModelHash, up.ModelId)
	}
	if len(up.TensorInputs) != 1 || up.TensorInputs[0].IndexName != "x" || fmt.Sprint(up.TensorInputs[0].Dims) != "[-1 4]" {
		t.Fatalf("upload payload input specs: %v", up.TensorInputs)
	}
	r := rand.New(rand.NewPCG(1, 2))
	inputs := randomInputs(t, r, modelSpecs(t, ts.Runtime, model), 3)
	run, payload, sig, err := b.run(ctx, "mlp", inputs, true)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(b.signKey, payload, sig) {
		t.Fatal("run reply signature does not verify")
	}
	inHash := sha256.Sum256(inputs[0].Data)
	if !bytes.Equal(run.InputHash, inHash[:]) || run.ModelId != "mlp" {
		t.Fatal("run payload: input hash or model id wrong")
	}
	var full securedexchange.Payload
	if err := proto.Unmarshal(payload, &full); err != nil || full.Header.IssuedAt.AsTime().IsZero() {
		t.Fatalf("issued_at missing: %v", err)
	}
	sameOutputs(t, run.OutputTensors, direct(t, ts.Runtime, model, inputs))
	if run.InferenceTimeNs == 0 {
		t.Fatal("inference_time not set")
	}
	// Unsigned: no signature, no input hash.
	run2, _, sig2, err := b.run(ctx, "mlp", inputs, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(sig2) != 0 || len(run2.InputHash) != 0 {
		t.Fatal("unsigned run carries a signature or input hash")
	}
	if _, err := b.ex.DeleteModel(ctx, &securedexchange.DeleteModelRequest{ModelId: "mlp"}); err != nil {
		t.Fatal(err)
	}
}

// TestModelsMatchEngine uploads, runs and deletes every test model over
// the wire and compares outputs bit for bit with the engine run directly.
func TestModelsMatchEngine(t *testing.T) {
	ts := testserver.Start(t)
	b := connectLikeBlindAI(t, ts)
	ctx := context.Background()
	models := []string{"mlp.onnx", "cnn.onnx", "multi.onnx", "demo.onnx", "scalar.onnx", "half.onnx"}
	for _, d := range tensor.DTypes() {
		models = append(models, "identity_"+d.String()+".onnx")
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, name := range models {
		t.Run(name, func(t *testing.T) {
			model := testserver.Model(t, name)
			if _, _, _, err := b.upload(ctx, model, name, false); err != nil {
				t.Fatal(err)
			}
			specs := modelSpecs(t, ts.Runtime, model)
			for _, dyn := range []int64{1, 5} {
				inputs := randomInputs(t, r, specs, dyn)
				run, _, _, err := b.run(ctx, name, inputs, false)
				if err != nil {
					t.Fatalf("dynamic dims %d: %v", dyn, err)
				}
				sameOutputs(t, run.OutputTensors, direct(t, ts.Runtime, model, inputs))
			}
			if _, err := b.ex.DeleteModel(ctx, &securedexchange.DeleteModelRequest{ModelId: name}); err != nil {
				t.Fatal(err)
			}
			if _, _, _, err := b.run(ctx, name, randomInputs(t, r, specs, 1), false); err == nil {
				t.Fatal("run after delete succeeded")
			}
		})
	}
}

// TestLargeInputChunked runs a CNN batch whose input spans many chunks.
func TestLargeInputChunked(t *testing.T) {
	ts := testserver.Start(t)
	b := connectLikeBlindAI(t, ts)
	ctx := context.Background()
	model := testserver.Model(t, "cnn.onnx")
	if _, _, _, err := b.upload(ctx, model, "cnn", false); err != nil {
		t.Fatal(err)
	}
	inputs := randomInputs(t, rand.New(rand.NewPCG(5, 6)), modelSpecs(t, ts.Runtime, model), 300) // 300*64*4 = 75 KiB
	run, _, _, err := b.run(ctx, "cnn", inputs, false)
	if err != nil {
		t.Fatal(err)
	}
	sameOutputs(t, run.OutputTensors, direct(t, ts.Runtime, model, inputs))
}
