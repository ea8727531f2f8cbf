package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/internal/onnxpb"
	"github.com/blindfold-ai/blindfold/tensor"
)

// canary writes n recognisable bytes to dir/name.
func canary(t *testing.T, dir, name string, n int) []byte {
	t.Helper()
	b := bytes.Repeat([]byte("CANARY-"), n/7+1)[:n]
	if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

func externalModel(t testing.TB, place onnxgen.Place, location string, n int64) []byte {
	t.Helper()
	m, err := onnxgen.ExternalData(place, location, n)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestLoadRefusesExternalData: a tensor that keeps its data in a file is
// refused wherever it sits, before ONNX Runtime sees the model, and the
// error names the tensor and where it is.
func TestLoadRefusesExternalData(t *testing.T) {
	rt := runtimeOrSkip(t)
	dir := t.TempDir()
	t.Chdir(dir)
	const n = 64
	canary(t, dir, "canary.bin", n)
	want := map[onnxgen.Place]string{
		onnxgen.InInitializer:       `initializer "W" in graph "main"`,
		onnxgen.InConstant:          `tensor in "W" in attribute "value" of node "leak" (Constant) in graph "main"`,
		onnxgen.InSubgraph:          `initializer "W" in graph "then_branch" (attribute "then_branch" of node "if" (If) in graph "main")`,
		onnxgen.InFunction:          `attribute "value" of node "leak" (Constant) in function "Leak" (domain "blindfold.test")`,
		onnxgen.InFunctionDefault:   `default of attribute "secret" of function "Leak" (domain "blindfold.test")`,
		onnxgen.InSparseInitializer: `sparse initializer (values) "W" in graph "main"`,
		onnxgen.InSparseIndices:     `sparse initializer (indices) "W_indices" in graph "main"`,
		onnxgen.InSparseConstant:    `sparse tensor in (values) "W" in attribute "sparse_value" of node "leak" (Constant) in graph "main"`,
		onnxgen.InTrainingInfo:      `initializer "W" in graph "init" (training_info[0].initialization)`,
	}
	for _, place := range onnxgen.Places() {
		t.Run(string(place), func(t *testing.T) {
			s, err := rt.Load(externalModel(t, place, "canary.bin", n))
			if err == nil {
				s.Close()
				t.Fatal("Load accepted a model with external data")
			}
			if !errors.Is(err, ErrExternalData) {
				t.Fatalf("Load: %v, want ErrExternalData", err)
			}
			if !strings.Contains(err.Error(), want[place]) || !strings.Contains(err.Error(), "external data") {
				t.Errorf("error %q does not contain %q", err, want[place])
			}
			if strings.Contains(err.Error(), "canary") {
				t.Errorf("error %q names the file", err)
			}
		})
	}
}

// TestExternalDataFolderIsEmpty bypasses the scan: ONNX Runtime itself is
// pointed at the empty folder, so a relative external-data path does not
// reach the working directory. A control run, with the folder set to the
// canary's, shows that ONNX Runtime honours the setting (and that, without
// the scan and the folder, the model would hand the file back).
func TestExternalDataFolderIsEmpty(t *testing.T) {
	rt := runtimeOrSkip(t)
	dir := t.TempDir()
	t.Chdir(dir)
	const n = 4099
	secret := canary(t, dir, "canary.bin", n)
	canary(t, dir, "state/canary.bin", n)
	// The default (a path under /dev/null) and an empty folder of one's
	// own, as the server uses (work_dir).
	empty := *rt
	empty.emptyDir = t.TempDir()
	for _, r := range []*Runtime{rt, &empty} {
		for _, place := range []onnxgen.Place{onnxgen.InInitializer, onnxgen.InConstant, onnxgen.InSubgraph, onnxgen.InFunction, onnxgen.InSparseInitializer} {
			for _, loc := range []string{"canary.bin", "state/canary.bin"} {
				t.Run(string(place)+"/"+loc, func(t *testing.T) {
					model := externalModel(t, place, loc, n)
					s, err := r.load(model)
					if err == nil {
						out := runZero(t, s, n)
						s.Close()
						t.Fatalf("ONNX Runtime loaded external data from the working directory (output starts %q)", out[:16])
					}
					if !errors.Is(err, ErrInvalidModel) {
						t.Fatalf("load: %v, want ErrInvalidModel", err)
					}
					reason := Reason(err)
					for _, leak := range []string{dir, empty.emptyDir, "canary", fmt.Sprint(n), "/dev/null"} {
						if strings.Contains(reason, leak) {
							t.Errorf("client-safe reason %q contains %q", reason, leak)
						}
					}
					t.Logf("log: %v\nclient: %s", err, reason)
				})
			}
		}
	}
	t.Run("control", func(t *testing.T) {
		ctl := *rt
		ctl.emptyDir = dir
		s, err := ctl.load(externalModel(t, onnxgen.InInitializer, "canary.bin", n))
		if err != nil {
			t.Fatalf("with the folder set to the canary's, load failed: %v", err)
		}
		defer s.Close()
		if out := runZero(t, s, n); !bytes.Equal(out, secret) {
			t.Fatal("the control model did not read the canary; the test above proves nothing")
		}
	})
}

// runZero runs a model of input x uint8[n] on zeros and returns y.
func runZero(t *testing.T, s *Session, n int) []byte {
	t.Helper()
	x, err := tensor.New("x", []int64{int64(n)}, make([]uint8, n))
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(context.Background(), []tensor.Tensor{x})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return out[0].Data
}

// TestNodeLimit: a model past the node limit is refused before ONNX
// Runtime parses it, quickly, and nodes in functions and subgraphs count.
func TestNodeLimit(t *testing.T) {
	rt := runtimeOrSkip(t)
	big, err := onnxgen.IdentityChain(1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("1M Identity nodes: %d bytes", len(big))
	start := time.Now()
	_, err = rt.Load(big)
	took := time.Since(start)
	if !errors.Is(err, ErrTooManyNodes) {
		t.Fatalf("Load(1M nodes): %v, want ErrTooManyNodes", err)
	}
	// Logged, not asserted: machines are shared and timings are noisy.
	// The refusal comes from the scan, before ONNX Runtime parses the
	// model (which takes tens of seconds for this one).
	t.Logf("refused in %v: %v", took, err)
	small := *rt
	small.limits.Nodes = 3
	ok, err := onnxgen.IdentityChain(3)
	if err != nil {
		t.Fatal(err)
	}
	s, err := small.Load(ok)
	if err != nil {
		t.Fatalf("3 nodes with a limit of 3: %v", err)
	}
	s.Close()
	over, err := onnxgen.IdentityChain(4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := small.Load(over); !errors.Is(err, ErrTooManyNodes) {
		t.Fatalf("4 nodes with a limit of 3: %v", err)
	}
	// The If model has 3 nodes in the main graph and one in each branch.
	ifModel := externalModel(t, onnxgen.InSubgraph, "x", 4)
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(ifModel, &m); err != nil {
		t.Fatal(err)
	}
	m.Graph.Node[1].Attribute[0].G.Initializer = nil
	m.Graph.Node[1].Attribute[0].G.Node[0].Input = []string{"x"}
	clean, err := proto.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	small.limits.Nodes = 4
	if _, err := small.Load(clean); !errors.Is(err, ErrTooManyNodes) {
		t.Fatalf("5 nodes (2 in subgraphs) with a limit of 4: %v", err)
	}
	small.limits.Nodes = 5
	s, err = small.Load(clean)
	if err != nil {
		t.Fatalf("5 nodes (2 in subgraphs) with a limit of 5: %v", err)
	}
	s.Close()
}

// TestFunctionCallLimit: calls of model-local functions count as the
// nodes ONNX Runtime will inline. A 2KB model whose functions each call the
// next twice would make ONNX Runtime inline 2^depth calls (depth 15 took
// 30s to load); it is refused at once. A few thousand calls load, and a
// function that calls itself is refused.
func TestFunctionCallLimit(t *testing.T) {
	rt := runtimeOrSkip(t)
	bomb, err := onnxgen.FunctionFanOut(40)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := rt.Load(bomb); !errors.Is(err, ErrTooManyNodes) {
		t.Fatalf("2^40 inlined calls in %d bytes: %v, want ErrTooManyNodes", len(bomb), err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("refusing took %v", took)
	}
	many, err := onnxgen.FunctionCalls(maxFunctionCalls + 1) // few nodes, too many calls
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Load(many); !errors.Is(err, ErrTooManyNodes) || !strings.Contains(err.Error(), "local functions more than") {
		t.Fatalf("%d calls: %v, want ErrTooManyNodes about local-function calls", maxFunctionCalls+1, err)
	}
	small := *rt
	small.limits.Nodes = 5000
	deep, err := onnxgen.FunctionFanOut(12) // 4095 calls and 4096 Identity nodes inlined
	if err != nil {
		t.Fatal(err)
	}
	if _, err := small.Load(deep); !errors.Is(err, ErrTooManyNodes) || !strings.Contains(err.Error(), "nodes") {
		t.Fatalf("8191 inlined nodes over a limit of 5000: %v", err)
	}
	flat, err := onnxgen.FunctionCalls(2000)
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.Load(flat)
	if err != nil {
		t.Fatalf("2000 calls of a one-node function: %v", err)
	}
	x := mustTensor(t, "x", []int64{1}, []float32{42})
	out, err := s.Run(context.Background(), []tensor.Tensor{x})
	if err != nil || values[float32](t, out[0])[0] != 42 {
		t.Fatalf("run: %v %v", out, err)
	}
	s.Close()
	// f0 calls f1, which calls f0.
	var m onnxpb.ModelProto
	loop, err := onnxgen.FunctionFanOut(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(loop, &m); err != nil {
		t.Fatal(err)
	}
	m.Functions[1].Node[0].OpType = proto.String("f0")
	m.Functions[1].Node[0].Domain = m.Functions[0].Node[0].Domain
	loop, err = proto.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Load(loop); !errors.Is(err, ErrInvalidModel) || !strings.Contains(err.Error(), "calls itself") {
		t.Fatalf("recursive functions: %v", err)
	}
}

// TestScanMalformed: truncations of a real model and deep nesting are
// errors, never panics, and never reach ONNX Runtime as something else.
func TestScanMalformed(t *testing.T) {
	model := externalModel(t, onnxgen.InSubgraph, "canary.bin", 8)
	for i := 0; i < len(model); i++ {
		if err := scanModel(model[:i], defaultLimits); err != nil && !errors.Is(err, ErrInvalidModel) && !errors.Is(err, ErrExternalData) {
			t.Fatalf("truncated at %d: %v", i, err)
		}
	}
	// Graphs nested maxGraphDepth+1 deep.
	g := &onnxpb.GraphProto{Name: proto.String("leaf")}
	for i := 0; i < maxGraphDepth; i++ {
		g = &onnxpb.GraphProto{Name: proto.String(fmt.Sprint("g", i)), Node: []*onnxpb.NodeProto{{
			OpType:    proto.String("If"),
			Attribute: []*onnxpb.AttributeProto{{Name: proto.String("then_branch"), G: g}},
		}}}
	}
	deep, err := proto.Marshal(&onnxpb.ModelProto{Graph: g})
	if err != nil {
		t.Fatal(err)
	}
	if err := scanModel(deep, defaultLimits); !errors.Is(err, ErrInvalidModel) || !strings.Contains(err.Error(), "nest") {
		t.Fatalf("graphs %d deep: %v", maxGraphDepth+1, err)
	}
}

// TestScanEncodings: data_location is refused whatever its wire encoding,
// external_data entries alone are refused, and repeated occurrences of a
// message field are each checked.
func TestScanEncodings(t *testing.T) {
	base, err := onnxgen.IdentityChain(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := scanModel(base, defaultLimits); err != nil {
		t.Fatalf("clean model: %v", err)
	}
	// A second graph occurrence (merged by parsers) holding an initializer.
	withInit := func(tp []byte) []byte {
		graph := protowireAppend(nil, graphInitializerField, tp)
		return protowireAppend(append([]byte{}, base...), modelGraphField, graph)
	}
	name := protowireAppend(nil, tensorNameField, []byte("W"))
	cases := map[string][]byte{
		"data_location varint 1": append(append([]byte{}, name...), 0x70, 0x01),
		"data_location varint 7": append(append([]byte{}, name...), 0x70, 0x07),
		"data_location as bytes": append(append([]byte{}, name...), protowireAppend(nil, tensorDataLocationField, []byte{1})...),
		"external_data only":     append(append([]byte{}, name...), protowireAppend(nil, tensorExternalDataField, nil)...),
	}
	for what, tp := range cases {
		if err := scanModel(withInit(tp), defaultLimits); !errors.Is(err, ErrExternalData) {
			t.Errorf("%s: %v, want ErrExternalData", what, err)
		}
	}
	if err := scanModel(withInit(append(append([]byte{}, name...), 0x70, 0x00)), defaultLimits); err != nil {
		t.Errorf("data_location DEFAULT: %v", err)
	}
}

func protowireAppend(b []byte, num int, v []byte) []byte {
	b = append(b, byte(num<<3|2))
	b = append(b, byte(len(v)))
	return append(b, v...)
}

// defaultLimits are a Runtime's limits when Options leave them at 0.
var defaultLimits = ModelLimits{Nodes: DefaultMaxModelNodes, Initializers: DefaultMaxModelInitializers}

// TestInitializerLimit: a model with more initializers than the limit
// (unused ones cost ONNX Runtime time that grows with their square) is
// refused before ONNX Runtime sees it; sparse and subgraph ones count.
func TestInitializerLimit(t *testing.T) {
	rt := runtimeOrSkip(t)
	build := func(n int) []byte {
		b, err := onnxgen.IdentityChain(1)
		if err != nil {
			t.Fatal(err)
		}
		var m onnxpb.ModelProto
		if err := proto.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			m.Graph.Initializer = append(m.Graph.Initializer, &onnxpb.TensorProto{
				Name: proto.String(fmt.Sprint("w", i)), DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)), Dims: []int64{1}, RawData: make([]byte, 4),
			})
		}
		out, err := proto.Marshal(&m)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	many := build(200_000)
	start := time.Now()
	if _, err := rt.Load(many); !errors.Is(err, ErrTooManyInitializers) {
		t.Fatalf("200,000 unused initializers: %v, want ErrTooManyInitializers", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("refusing took %v", took)
	}
	small := *rt
	small.limits.Initializers = 3
	s, err := small.Load(build(3))
	if err != nil {
		t.Fatalf("3 initializers with a limit of 3: %v", err)
	}
	s.Close()
	if _, err := small.Load(build(4)); !errors.Is(err, ErrTooManyInitializers) {
		t.Fatalf("4 initializers with a limit of 3: %v", err)
	}
	// A sparse initializer and one in a subgraph count too: the models
	// below hold one initializer each, in those places.
	small.limits.Initializers = 0
	for _, place := range []onnxgen.Place{onnxgen.InSparseInitializer, onnxgen.InSubgraph} {
		if err := scanModel(externalModel(t, place, "x", 4), small.limits); !errors.Is(err, ErrTooManyInitializers) {
			t.Errorf("%s with a limit of 0 initializers: %v", place, err)
		}
	}
}
