package server

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/engine"
	"github.com/blindfold-ai/blindfold/internal/wire"
	"github.com/blindfold-ai/blindfold/tensor"
)

// BenchmarkAssemble joins a 4 MiB float32 input sent in chunks of several
// sizes, as RunModel does. One chunk is the zero-copy path; smaller chunks
// cost one copy into a buffer taken once from bufpool for the declared
// shape (allocated only when the pool has none), with no allocation per
// chunk.
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
				a.release() // as the server does after the run: the buffer goes back to bufpool
			}
		})
	}
}

// framed splits an encoded message into 16 KiB buffers, as gRPC hands a
// message that arrived in HTTP/2 DATA frames of its default size.
func framed(b []byte) mem.BufferSlice {
	var out mem.BufferSlice
	for off := 0; off < len(b); off += 16 << 10 {
		out = append(out, mem.SliceBuffer(b[off:min(off+16<<10, len(b))]))
	}
	return out
}

// BenchmarkReceiveInput decodes a 4 MiB float32 input sent in chunks, as
// gRPC hands it over in 16 KiB frames, and assembles it, with the
// protobuf codec and with the wire codec the server uses. It reports the
// bytes copied per tensor byte (copies/B) on the server's side of gRPC:
// gathering a message's frames, decoding its bytes field, assembling.
func BenchmarkReceiveInput(b *testing.B) {
	const n = 1 << 20
	specs := []engine.TensorSpec{{Name: "x", DType: tensor.F32, Shape: []int64{-1}}}
	data := make([]byte, 4*n)
	codecs := map[string]encoding.CodecV2{"proto": encoding.GetCodecV2("proto"), "wire": wire.NewCodec()}
	for _, name := range []string{"proto", "wire"} {
		codec := codecs[name]
		for _, chunk := range []int{len(data), 256 << 10, 32 << 10} {
			var msgs [][]byte
			for off := 0; off < len(data); off += chunk {
				m, err := proto.Marshal(&securedexchange.RunModelRequest{ModelId: "m", InputTensors: []*securedexchange.TensorData{{
					Info:      &securedexchange.TensorInfo{Dims: []int32{n}, DatumType: securedexchange.DatumTypeEnum_F32},
					BytesData: data[off:min(off+chunk, len(data))],
				}}})
				if err != nil {
					b.Fatal(err)
				}
				msgs = append(msgs, m)
			}
			b.Run(fmt.Sprintf("codec=%s/chunk=%dKiB", name, chunk>>10), func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				var copied int64
				for b.Loop() {
					a := newAssembler(specs, 1<<30, &byteBudget{max: 1 << 40}, nil)
					for _, m := range msgs {
						frames := framed(m)
						if len(frames) > 1 {
							copied += int64(len(m)) // gathering the frames into one buffer
						}
						var req securedexchange.RunModelRequest
						if err := codec.Unmarshal(frames, &req); err != nil {
							b.Fatal(err)
						}
						td := req.InputTensors[0]
						if name == "proto" || len(frames) == 1 && name == "wire" {
							copied += int64(len(td.BytesData)) // decoding copies the bytes field
						}
						if err := a.add(td); err != nil {
							b.Fatal(err)
						}
						if len(msgs) > 1 {
							copied += int64(len(td.BytesData)) // assembling copies each chunk once
						}
					}
					if _, err := a.finish(); err != nil {
						b.Fatal(err)
					}
					a.release()
				}
				b.ReportMetric(float64(copied)/float64(b.N)/float64(len(data)), "copies/B")
			})
		}
	}
}
