package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/internal/onnxpb"
)

// fuzzLimits are the model limits under fuzzing: small, so that mutated
// models cross them.
var fuzzLimits = ModelLimits{Nodes: 16, Initializers: 8}

// scanSeeds are the scanner's seed models: every generated test model, a
// model with external data in each place a tensor can sit, and models that
// call local functions.
func scanSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	models := onnxgen.Models()
	names := make([]string, 0, len(models))
	for name := range models {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b, err := models[name]()
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	for _, place := range onnxgen.Places() {
		b, err := onnxgen.ExternalData(place, "state/sealing.key", 4)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	for _, build := range []func() ([]byte, error){
		func() ([]byte, error) { return onnxgen.FunctionFanOut(3) },
		func() ([]byte, error) { return onnxgen.FunctionCalls(3) },
	} {
		b, err := build()
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestScanSeedsCommitted keeps testdata/fuzz/FuzzScanModel equal to the
// seeds built here (the external-data ones from the attack report are
// the point). BLINDFOLD_WRITE_FUZZ_SEEDS=1 rewrites them.
func TestScanSeedsCommitted(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzScanModel")
	seeds := scanSeeds(t)
	rewrite := os.Getenv("BLINDFOLD_WRITE_FUZZ_SEEDS") != ""
	for i, s := range seeds {
		path := filepath.Join(dir, fmt.Sprintf("seed-%d", i))
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if rewrite {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Errorf("%s differs from its seed (err %v); run with BLINDFOLD_WRITE_FUZZ_SEEDS=1 to rewrite", path, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(seeds) {
		t.Errorf("%s holds %d files for %d seeds", dir, len(entries), len(seeds))
	}
}

// reference walks a decoded model through protobuf reflection, knowing
// nothing of where tensors sit: every TensorProto anywhere is looked at,
// every NodeProto counted. It is the scanner's independent oracle.
func reference(m protoreflect.Message, depth int, external *bool, nodes, inits *int) {
	if depth > 200 {
		return
	}
	switch m.Descriptor().FullName() {
	case "onnx.TensorProto":
		tp := m.Interface().(*onnxpb.TensorProto)
		if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL || len(tp.GetExternalData()) > 0 {
			*external = true
		}
	case "onnx.NodeProto":
		*nodes++
	case "onnx.GraphProto":
		g := m.Interface().(*onnxpb.GraphProto)
		*inits += len(g.GetInitializer()) + len(g.GetSparseInitializer())
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				reference(l.Get(i).Message(), depth+1, external, nodes, inits)
			}
			return true
		}
		reference(v.Message(), depth+1, external, nodes, inits)
		return true
	})
}

// FuzzScanModel: the scanner never panics, fails only with its own
// sentinels, and never passes a model in which the reference walk finds
// a tensor marked external, or more nodes or initializers than the limits.
func FuzzScanModel(f *testing.F) {
	for _, s := range scanSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := scanModel(data, fuzzLimits)
		if err != nil && !errors.Is(err, ErrInvalidModel) && !errors.Is(err, ErrExternalData) && !errors.Is(err, ErrTooManyNodes) && !errors.Is(err, ErrTooManyInitializers) {
			t.Fatalf("unexpected error: %v", err)
		}
		var m onnxpb.ModelProto
		if proto.Unmarshal(data, &m) != nil {
			return
		}
		external, nodes, inits := false, 0, 0
		reference(m.ProtoReflect(), 0, &external, &nodes, &inits)
		if err == nil && external {
			t.Fatal("the scanner passed a model with a tensor marked external")
		}
		if err == nil && nodes > fuzzLimits.Nodes {
			t.Fatalf("the scanner passed a model of %d nodes over a limit of %d", nodes, fuzzLimits.Nodes)
		}
		if err == nil && inits > fuzzLimits.Initializers {
			t.Fatalf("the scanner passed a model of %d initializers over a limit of %d", inits, fuzzLimits.Initializers)
		}
	})
}
