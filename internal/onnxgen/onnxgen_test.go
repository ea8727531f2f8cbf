package onnxgen

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/blindfold-ai/blindfold/internal/onnxpb"
	"github.com/blindfold-ai/blindfold/tensor"
)

const modelsDir = "../../testdata/models"

// TestCommittedModels checks that every committed model is exactly what
// the builder produces today, and that no stray model is committed.
func TestCommittedModels(t *testing.T) {
	models := Models()
	for _, name := range ModelNames() {
		t.Run(name, func(t *testing.T) {
			want, err := models[name]()
			if err != nil {
				t.Fatalf("building: %v", err)
			}
			again, err := models[name]()
			if err != nil || !bytes.Equal(want, again) {
				t.Fatalf("building twice gives different bytes (err %v)", err)
			}
			got, err := os.ReadFile(filepath.Join(modelsDir, name))
			if err != nil {
				t.Fatalf("%v (run: go generate ./internal/onnxgen)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("testdata/models/%s is stale (%d bytes, builder gives %d); run: go generate ./internal/onnxgen", name, len(got), len(want))
			}
			if len(want) > 16<<10 {
				t.Errorf("model is %d bytes; keep test models small", len(want))
			}
		})
	}
	files, err := filepath.Glob(filepath.Join(modelsDir, "*.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	var extra []string
	for _, f := range files {
		if _, ok := models[filepath.Base(f)]; !ok {
			extra = append(extra, filepath.Base(f))
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("testdata/models has files no builder makes: %v", extra)
	}
}

func TestModelStructure(t *testing.T) {
	b, err := MLP()
	if err != nil {
		t.Fatal(err)
	}
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.GetIrVersion() != IRVersion || len(m.GetOpsetImport()) != 1 || m.GetOpsetImport()[0].GetVersion() != Opset {
		t.Errorf("ir_version %d, opsets %v", m.GetIrVersion(), m.GetOpsetImport())
	}
	in := m.GetGraph().GetInput()
	if len(in) != 1 || in[0].GetName() != "x" {
		t.Fatalf("inputs: %v", in)
	}
	dims := in[0].GetType().GetTensorType().GetShape().GetDim()
	if len(dims) != 2 || dims[0].GetDimParam() != "batch" || dims[1].GetDimValue() != 4 {
		t.Errorf("x dims: %v", dims)
	}
	if et := in[0].GetType().GetTensorType().GetElemType(); et != int32(onnxpb.TensorProto_FLOAT) {
		t.Errorf("x elem type %d", et)
	}
	if n := len(m.GetGraph().GetInitializer()); n != 4 {
		t.Errorf("%d initializers, want 4", n)
	}
}

func TestElemTypeCoversAllDTypes(t *testing.T) {
	seen := map[int32]bool{}
	for _, d := range tensor.DTypes() {
		et, err := ElemType(d)
		if err != nil || et == 0 || seen[et] {
			t.Errorf("%s: %d %v", d, et, err)
		}
		seen[et] = true
	}
	if _, err := ElemType(tensor.DType(99)); err == nil {
		t.Error("ElemType(99) did not fail")
	}
}

func TestBuildErrors(t *testing.T) {
	g := NewGraph("bad")
	g.Floats("w", []int64{2, 2}, []float32{1, 2, 3})
	if _, err := g.Model(); err == nil {
		t.Error("short initializer did not fail")
	}
}

func TestMLPForward(t *testing.T) {
	p := MLPWeights()
	if len(p.W1) != 64 || len(p.B1) != 16 || len(p.W2) != 48 || len(p.B2) != 3 {
		t.Fatal("weight sizes")
	}
	y := p.Forward(make([]float32, 8), 2)
	// With a zero input: y = relu(B1)·W2 + B2, the same for both rows.
	for k := 0; k < 3; k++ {
		s := float32(0)
		for j := 0; j < 16; j++ {
			h := p.B1[j]
			if h < 0 {
				h = 0
			}
			s += h * p.W2[j*3+k]
		}
		if y[k] != s+p.B2[k] || y[3+k] != y[k] {
			t.Errorf("y[%d] = %v, want %v", k, y[k], s+p.B2[k])
		}
	}
}

func TestRandDeterministic(t *testing.T) {
	a, b := NewRand(7), NewRand(7)
	for i := 0; i < 100; i++ {
		x, y := a.Weight(), b.Weight()
		if x != y || x < -1 || x >= 1 {
			t.Fatalf("weight %d: %v vs %v", i, x, y)
		}
	}
}
