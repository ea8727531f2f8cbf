package bench

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"slices"
	"testing"

	"github.com/blindfold-ai/blindfold/engine"
	"github.com/blindfold-ai/blindfold/tensor"
)

// openRuntime opens ONNX Runtime or skips the test saying what is missing.
func openRuntime(t testing.TB) *engine.Runtime {
	t.Helper()
	if _, err := engine.FindLibrary(""); err != nil {
		if os.Getenv("CI") != "" { // CI installs it (scripts/test.sh): missing there is a failure
			t.Fatalf("ONNX Runtime library not found (run make onnxruntime or set %s): %v", engine.LibraryEnv, err)
		}
		t.Skipf("ONNX Runtime library not found (run make onnxruntime or set %s): %v", engine.LibraryEnv, err)
	}
	rt, err := engine.Open(engine.Options{})
	if err != nil {
		t.Fatalf("opening ONNX Runtime: %v", err)
	}
	return rt
}

// checkFinite fails t if a float32 tensor holds NaN or an infinity.
func checkFinite(t *testing.T, out tensor.Tensor) {
	t.Helper()
	for i := 0; i+4 <= len(out.Data); i += 4 {
		v := math.Float32frombits(binary.LittleEndian.Uint32(out.Data[i:]))
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("output %q element %d is %v", out.Name, i/4, v)
		}
	}
}

func loadAndRun(t *testing.T, model []byte, inputs []tensor.Tensor) (*engine.Session, []tensor.Tensor) {
	t.Helper()
	rt := openRuntime(t)
	s, err := rt.Load(model)
	if err != nil {
		t.Fatalf("loading generated model: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	out, err := s.Run(context.Background(), inputs)
	if err != nil {
		t.Fatalf("running generated model: %v", err)
	}
	return s, out
}

func TestEncoderSmall(t *testing.T) {
	c := EncoderConfig{Layers: 1, Hidden: 64, Heads: 4, FF: 128, Vocab: 100, MaxPos: 32, Seq: 16, Seed: 1}
	model, err := Encoder(c)
	if err != nil {
		t.Fatal(err)
	}
	// Weights dominate the file: it must hold every parameter as float32.
	if min := 4 * c.Params(); int64(len(model)) < min {
		t.Errorf("model is %d bytes, smaller than its %d parameters' %d bytes", len(model), c.Params(), min)
	}
	again, err := Encoder(c)
	if err != nil || !slices.Equal(model, again) {
		t.Errorf("Encoder is not deterministic (err %v)", err)
	}
	in, err := EncoderInputs(c, 1)
	if err != nil {
		t.Fatal(err)
	}
	s, out := loadAndRun(t, model, in)
	ins := s.Inputs()
	if len(ins) != 2 || ins[0].Name != "input_ids" || ins[0].DType != tensor.I64 || !slices.Equal(ins[0].Shape, []int64{1, 16}) ||
		ins[1].Name != "attention_mask" || ins[1].DType != tensor.I64 || !slices.Equal(ins[1].Shape, []int64{1, 16}) {
		t.Errorf("inputs = %v, want input_ids and attention_mask int64[1,16]", ins)
	}
	if len(out) != 1 || out[0].Name != "last_hidden_state" || out[0].DType != tensor.F32 || !slices.Equal(out[0].Shape, []int64{1, 16, 64}) {
		t.Fatalf("outputs = %v, want last_hidden_state float32[1,16,64]", out)
	}
	checkFinite(t, out[0])
}

func TestEncoderConfigErrors(t *testing.T) {
	for _, c := range []EncoderConfig{
		{Layers: 1, Hidden: 10, Heads: 3, FF: 8, Vocab: 5, MaxPos: 4, Seq: 4},
		{Layers: 0, Hidden: 8, Heads: 2, FF: 8, Vocab: 5, MaxPos: 4, Seq: 4},
		{Layers: 1, Hidden: 8, Heads: 2, FF: 8, Vocab: 5, MaxPos: 2, Seq: 4},
	} {
		if _, err := Encoder(c); err == nil {
			t.Errorf("Encoder(%+v) succeeded, want an error", c)
		}
	}
}

func TestDistilBERTParams(t *testing.T) {
	// DistilBERT-base without its pooler has about 66 million weights.
	if p := DistilBERT.Params(); p < 65e6 || p > 67e6 {
		t.Errorf("DistilBERT.Params() = %d, want about 66 million", p)
	}
}

func TestResNetSmall(t *testing.T) {
	c := ResNetConfig{Image: 32, Width: 4, Classes: 10, Seed: 1}
	model, err := ResNet(c)
	if err != nil {
		t.Fatal(err)
	}
	in, err := randomInputs(1, floatInput("image", 1, 3, 32, 32))
	if err != nil {
		t.Fatal(err)
	}
	s, out := loadAndRun(t, model, in)
	if ins := s.Inputs(); len(ins) != 1 || !slices.Equal(ins[0].Shape, []int64{1, 3, 32, 32}) {
		t.Errorf("inputs = %v, want image float32[1,3,32,32]", ins)
	}
	if len(out) != 1 || out[0].Name != "logits" || !slices.Equal(out[0].Shape, []int64{1, 10}) {
		t.Fatalf("outputs = %v, want logits float32[1,10]", out)
	}
	checkFinite(t, out[0])
	if _, err := ResNet(ResNetConfig{Image: 8, Width: 4, Classes: 10}); err == nil {
		t.Error("ResNet with an 8x8 image succeeded, want an error")
	}
}

// TestModelInputsFit checks each benchmark model's inputs against the model
// itself, for the models that are cheap to make or already cached.
func TestModelInputsFit(t *testing.T) {
	rt := openRuntime(t)
	// The encoder (265 MB) is covered at small sizes by the generator tests
	// and whole by the benchmark; the PP-OCRv4 models by TestOCRModelsLoad.
	cheap := map[string]bool{"mlp": true, "resnet18": !testing.Short()}
	for _, m := range Models() {
		if !cheap[m.Name] {
			continue
		}
		t.Run(m.Name, func(t *testing.T) {
			b, err := m.Bytes(context.Background(), t.TempDir(), testWriter{t})
			if err != nil {
				t.Fatal(err)
			}
			s, err := rt.Load(b)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			in, err := m.Inputs()
			if err != nil {
				t.Fatal(err)
			}
			if err := s.CheckInputs(in); err != nil {
				t.Fatalf("inputs do not fit the model: %v", err)
			}
		})
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
