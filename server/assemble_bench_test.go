package server

import (
	"fmt"
	"testing"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/engine"
	"github.com/blindfold-ai/blindfold/tensor"
)

// BenchmarkAssemble joins a 4 MiB float32 input sent in chunks of several
// sizes, as RunModel does. One chunk is the zero-copy path; smaller chunks
// cost one copy into a buffer allocated once from the declared shape, with
// no allocation per chunk.
func BenchmarkAssemble(b *testing.B) {
	const n = 1 << 20
	specs := []engine.TensorSpec{{Name: "x", DType: tensor.F32, Shape: []int64{-1}}}
	data := make([]byte, 4*n)
	for _, chunk := range []int{len(data), 256 << 10, 32 << 10} {
		var msgs []*securedexchange.TensorData
		for off := 0; off < len(data); off += chunk {
			msgs = append(msgs, &securedexchange.TensorData{
				Info:      &securedexchange.TensorInfo{Dims: []int32{n}, DatumType: securedexchange.DatumTypeEnum_F32},
				BytesData: data[off:min(off+chunk, len(data))],
			})
		}
		b.Run(fmt.Sprintf("chunk=%dKiB", chunk>>10), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				a := newAssembler(specs, 1<<30, &byteBudget{max: 1 << 40}, nil)
				for _, m := range msgs {
					if err := a.add(m); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := a.finish(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
