package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/blindfold-ai/blindfold/tensor"
)

func TestAlignedBuffers(t *testing.T) {
	for n := 0; n < 200; n += 7 {
		b := alignedBuffer(n)
		if len(b) != n || (n > 0 && uintptr(unsafe.Pointer(&b[0]))%Alignment != 0) {
			t.Fatalf("alignedBuffer(%d): len %d, misaligned", n, len(b))
		}
	}
	base := make([]byte, 300)
	for i := range base {
		base[i] = byte(i)
	}
	for off := 0; off < 70; off++ {
		src := base[off : off+100]
		got := aligned(src)
		if !bytes.Equal(got, src) || uintptr(unsafe.Pointer(&got[0]))%Alignment != 0 {
			t.Fatalf("aligned at offset %d: content or alignment wrong", off)
		}
	}
}

// TestOutputsIndependentOfInputAddress runs a float reduction on the same
// values placed at every offset in a buffer: the output must not change.
// Without aligned buffers ONNX Runtime's sum differs in the last bit.
func TestOutputsIndependentOfInputAddress(t *testing.T) {
	sess := load(t, "scalar.onnx")
	r := rand.New(rand.NewPCG(1, 1))
	const n = 37
	vals := make([]byte, 4*n)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint32(vals[4*i:], math.Float32bits(float32(r.NormFloat64())))
	}
	base := make([]byte, len(vals)+128)
	var want []byte
	for off := 0; off < 128; off++ {
		buf := base[off : off+len(vals)]
		copy(buf, vals)
		out, err := sess.Run(context.Background(), []tensor.Tensor{{Name: sess.Inputs()[0].Name, DType: tensor.F32, Shape: []int64{n}, Data: buf}})
		if err != nil {
			t.Fatal(err)
		}
		if want == nil {
			want = out[0].Data
		} else if !bytes.Equal(out[0].Data, want) {
			t.Fatalf("input at offset %d gives %v, offset 0 gave %v", off, out[0].Data, want)
		}
	}
}
