package server

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/engine"
	"github.com/blindfold-ai/blindfold/tensor"
)

var asmSpecs = []engine.TensorSpec{
	{Name: "x", DType: tensor.F32, Shape: []int64{-1, 2}},
	{Name: "ids", DType: tensor.I64, Shape: []int64{3}},
}

func td(index int32, name string, dt tensor.DType, dims []int32, data []byte) *securedexchange.TensorData {
	return &securedexchange.TensorData{
		Info:      &securedexchange.TensorInfo{Index: index, IndexName: name, DatumType: securedexchange.DatumTypeEnum(dt), Dims: dims},
		BytesData: data,
	}
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func TestAssemblerJoinsChunks(t *testing.T) {
	x := seq(16) // float32 [2,2]
	ids := seq(24)
	h := sha256.New()
	a := newAssembler(asmSpecs, 1<<20, &byteBudget{max: 1 << 40}, h)
	chunks := []*securedexchange.TensorData{
		td(1, "", tensor.I64, []int32{3}, ids[:5]),
		td(0, "", tensor.F32, []int32{2, 2}, x[:7]),
		td(0, "x", tensor.F32, []int32{2, 2}, x[7:]), // same tensor, by name
		td(1, "", 0, nil, ids[5:]),                   // a bare later chunk
	}
	var sent []byte
	wantX, wantIDs := string(x), string(ids)
	for _, c := range chunks {
		sent = append(sent, c.BytesData...)
		if err := a.add(c); err != nil {
			t.Fatal(err)
		}
		// Once copied, a chunk's bytes are zeroed in the received message.
		if !bytes.Equal(c.BytesData, make([]byte, len(c.BytesData))) {
			t.Fatalf("chunk left as received after being copied: %x", c.BytesData)
		}
	}
	got, err := a.finish()
	if err != nil {
		t.Fatal(err)
	}
	if string(got[0].Data) != wantX || string(got[1].Data) != wantIDs {
		t.Fatal("joined bytes differ from the bytes sent")
	}
	if got[0].Name != "x" || got[1].Name != "ids" || got[0].Shape[0] != 2 {
		t.Fatalf("names/shapes wrong: %+v", got)
	}
	want := sha256.Sum256(sent)
	if string(h.Sum(nil)) != string(want[:]) {
		t.Fatal("input hash is not SHA-256 of the bytes in arrival order")
	}
}

func TestAssemblerErrors(t *testing.T) {
	tests := []struct {
		name   string
		chunks []*securedexchange.TensorData
		limit  int64
		code   codes.Code
		want   string
	}{
		{"no info", []*securedexchange.TensorData{{BytesData: seq(4)}}, 1 << 20, codes.InvalidArgument, "no info"},
		{"index out of range", []*securedexchange.TensorData{td(2, "", tensor.F32, []int32{1}, seq(4))}, 1 << 20, codes.InvalidArgument, "out of range"},
		{"negative index", []*securedexchange.TensorData{td(-1, "", tensor.F32, []int32{1}, seq(4))}, 1 << 20, codes.InvalidArgument, "out of range"},
		{"unknown name", []*securedexchange.TensorData{td(0, "y", tensor.F32, []int32{1}, seq(4))}, 1 << 20, codes.InvalidArgument, "unknown input name"},
		{"wrong dtype", []*securedexchange.TensorData{td(0, "", tensor.F64, []int32{1, 2}, seq(16))}, 1 << 20, codes.InvalidArgument, "expected float32, got float64"},
		{"bad dtype", []*securedexchange.TensorData{td(0, "", 99, []int32{1, 2}, seq(16))}, 1 << 20, codes.InvalidArgument, "unknown datum_type"},
		{"negative dim", []*securedexchange.TensorData{td(0, "", tensor.F32, []int32{-1, 2}, seq(8))}, 1 << 20, codes.InvalidArgument, "dimension 0 is negative"},
		{"too many bytes", []*securedexchange.TensorData{td(0, "", tensor.F32, []int32{1, 2}, seq(4)), td(0, "", tensor.F32, []int32{1, 2}, seq(8))}, 1 << 20, codes.InvalidArgument, "more bytes"},
		{"more after whole", []*securedexchange.TensorData{td(0, "", tensor.F32, []int32{1, 2}, seq(8)), td(0, "", tensor.F32, []int32{1, 2}, seq(1))}, 1 << 20, codes.InvalidArgument, "more bytes"},
		{"changed dims", []*securedexchange.TensorData{td(0, "", tensor.F32, []int32{2, 2}, seq(4)), td(0, "", tensor.F32, []int32{1, 2}, seq(4))}, 1 << 20, codes.InvalidArgument, "later chunk declares"},
		{"over limit counted", []*securedexchange.TensorData{td(0, "", tensor.F32, []int32{1, 2}, seq(8)), td(1, "", tensor.I64, []int32{3}, seq(24))}, 20, codes.ResourceExhausted, "max_input_bytes"},
		{"over limit declared", []*securedexchange.TensorData{td(0, "", tensor.F32, []int32{1000, 2}, seq(8))}, 100, codes.ResourceExhausted, "max_input_bytes"},
		{"huge dims", []*securedexchange.TensorData{td(0, "", tensor.F32, []int32{1 << 30, 2}, seq(8))}, 1 << 20, codes.ResourceExhausted, "max_input_bytes"},
		// Declared shapes are checked against the model before anything is
		// allocated: a huge dimension where the model has a static one is
		// refused at once, whatever the limits.
		{"static dim declared huge", []*securedexchange.TensorData{td(0, "", tensor.F32, []int32{1, 1 << 30}, seq(4))}, 1 << 40, codes.InvalidArgument, "the model expects 2"},
		{"rank declared wrong", []*securedexchange.TensorData{td(0, "", tensor.F32, []int32{1 << 26}, seq(4))}, 1 << 40, codes.InvalidArgument, "the model expects rank 2"},
		{"two inputs over limit declared", []*securedexchange.TensorData{td(0, "", tensor.F32, []int32{2, 2}, seq(4)), td(1, "", tensor.I64, []int32{3}, seq(4))}, 32, codes.ResourceExhausted, "with the other inputs"},
		{"empty chunks flood", append([]*securedexchange.TensorData{td(0, "", tensor.F32, []int32{1, 2}, seq(4))}, emptyChunks(maxEmptyChunks+1)...), 1 << 20, codes.InvalidArgument, "without input bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAssembler(asmSpecs, tt.limit, &byteBudget{max: 1 << 40}, nil)
			var err error
			for _, c := range tt.chunks {
				if err = a.add(c); err != nil {
					break
				}
			}
			if status.Code(err) != tt.code || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v; want %v containing %q", err, tt.code, tt.want)
			}
		})
	}
}

func emptyChunks(n int) []*securedexchange.TensorData {
	out := make([]*securedexchange.TensorData, n)
	for i := range out {
		out[i] = td(0, "", tensor.F32, []int32{1, 2}, nil)
	}
	return out
}

// The server-wide budget of input bytes in flight is taken when a tensor
// is declared, refused past its cap, and given back by release.
func TestAssemblerBudget(t *testing.T) {
	budget := &byteBudget{max: 100}
	a := newAssembler(asmSpecs, 1<<20, budget, nil)
	if err := a.add(td(0, "", tensor.F32, []int32{10, 2}, seq(4))); err != nil { // 80 bytes declared
		t.Fatal(err)
	}
	if got := budget.inUse(); got != 80 {
		t.Fatalf("budget in use = %d, want 80", got)
	}
	b := newAssembler(asmSpecs, 1<<20, budget, nil)
	err := b.add(td(0, "", tensor.F32, []int32{3, 2}, seq(4))) // 24 more: over 100
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "max_inflight_input_bytes") {
		t.Fatalf("over budget: %v", err)
	}
	a.release()
	a.release()
	if got := budget.inUse(); got != 0 {
		t.Fatalf("budget in use after release = %d, want 0", got)
	}
	if err := b.add(td(0, "", tensor.F32, []int32{3, 2}, seq(4))); err != nil {
		t.Fatalf("after release: %v", err)
	}
	b.release()
}

// An empty tensor (a zero dimension) is one chunk without bytes.
func TestAssemblerEmptyTensor(t *testing.T) {
	a := newAssembler(asmSpecs, 1<<20, &byteBudget{max: 1 << 20}, nil)
	if err := a.add(td(0, "", tensor.F32, []int32{0, 2}, nil)); err != nil {
		t.Fatal(err)
	}
	if err := a.add(td(1, "", tensor.I64, []int32{3}, seq(24))); err != nil {
		t.Fatal(err)
	}
	got, err := a.finish()
	if err != nil {
		t.Fatal(err)
	}
	if len(got[0].Data) != 0 || got[0].Shape[0] != 0 || len(got[1].Data) != 24 {
		t.Fatalf("empty tensors: %+v", got)
	}
}

func TestAssemblerFinishErrors(t *testing.T) {
	a := newAssembler(asmSpecs, 1<<20, &byteBudget{max: 1 << 40}, nil)
	if err := a.add(td(0, "", tensor.F32, []int32{1, 2}, seq(8))); err != nil {
		t.Fatal(err)
	}
	if _, err := a.finish(); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), `missing input "ids"`) {
		t.Fatalf("missing input: %v", err)
	}
	if err := a.add(td(1, "", tensor.I64, []int32{3}, seq(10))); err != nil {
		t.Fatal(err)
	}
	if _, err := a.finish(); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "mid-tensor") {
		t.Fatalf("mid-tensor: %v", err)
	}
}

func TestCheckModelID(t *testing.T) {
	for _, id := range []string{"resnet", "my model v2.onnx", "ünïcode-名前", strings.Repeat("a", MaxModelIDBytes)} {
		if err := checkModelID(id); err != nil {
			t.Errorf("checkModelID(%q) = %v, want nil", id, err)
		}
	}
	for _, id := range []string{"", " lead", "trail ", "tab\there", "nl\n", strings.Repeat("a", MaxModelIDBytes+1), "\xff\xfe",
		"zero\u200bwidth", "bidi\u202eflip", "line\u2028sep", "para\u2029sep", "nbsp\u00a0x", "bom\ufeff", "rtl\u200fmark", "soft\u00adhyphen"} {
		if err := checkModelID(id); status.Code(err) != codes.InvalidArgument {
			t.Errorf("checkModelID(%q) = %v, want InvalidArgument", id, err)
		}
	}
}
