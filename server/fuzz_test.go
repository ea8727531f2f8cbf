package server

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/store"
	"github.com/blindfold-ai/blindfold/tensor"
)

// seedRunRequests are RunModelRequest messages as clients send them: each
// input whole, or split in chunks, by index or by name.
func seedRunRequests() [][]byte {
	x := make([]byte, 16) // float32 [2,2]
	ids := make([]byte, 24)
	for i := range ids {
		ids[i] = byte(i)
	}
	info := func(idx int32, name string, dt tensor.DType, dims ...int32) *securedexchange.TensorInfo {
		return &securedexchange.TensorInfo{Index: idx, IndexName: name, DatumType: securedexchange.DatumTypeEnum(dt), Dims: dims}
	}
	reqs := []*securedexchange.RunModelRequest{
		{ModelId: "m", InputTensors: []*securedexchange.TensorData{{Info: info(0, "", tensor.F32, 2, 2), BytesData: x}, {Info: info(1, "", tensor.I64, 3), BytesData: ids}}},
		{ModelId: "m", Sign: true, InputTensors: []*securedexchange.TensorData{
			{Info: info(0, "x", tensor.F32, 2, 2), BytesData: x[:5]}, {Info: info(0, "x", tensor.F32, 2, 2), BytesData: x[5:]},
			{Info: info(1, "ids", tensor.I64, 3), BytesData: ids[:8]}, {Info: info(1, "", 0), BytesData: ids[8:]}}},
		{ModelId: "m", InputTensors: []*securedexchange.TensorData{{Info: info(0, "", tensor.F32, 1, 2), BytesData: x[:8]}}},
	}
	var out [][]byte
	for _, r := range reqs {
		b, err := proto.Marshal(r)
		if err != nil {
			panic(err)
		}
		out = append(out, b)
	}
	return out
}

// seedSendRequests are SendModelRequest messages as clients send them.
func seedSendRequests() [][]byte {
	model := bytes.Repeat([]byte("onnx-model-bytes"), 20)
	reqs := []*securedexchange.SendModelRequest{
		{Data: model, Length: uint64(len(model)), ModelName: "m", Sign: true},
		{Data: model[:100], Length: 0, ModelId: "m", SaveModel: true},
		{Data: model, Length: 10, ModelId: "m"},
		{Data: nil, ModelId: "empty"},
	}
	var out [][]byte
	for _, r := range reqs {
		b, err := proto.Marshal(r)
		if err != nil {
			panic(err)
		}
		out = append(out, b)
	}
	return out
}

// TestFuzzSeedsCommitted checks that testdata/fuzz holds exactly the seed
// messages built here (real client messages), so the committed corpus and
// the code cannot drift apart. BLINDFOLD_WRITE_FUZZ_SEEDS=1 rewrites them.
func TestFuzzSeedsCommitted(t *testing.T) {
	rewrite := os.Getenv("BLINDFOLD_WRITE_FUZZ_SEEDS") != ""
	check := func(target string, seeds [][]byte, extra string) {
		dir := filepath.Join("testdata", "fuzz", target)
		for i, s := range seeds {
			path := filepath.Join(dir, fmt.Sprintf("seed-%d", i))
			want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n%s", s, extra)
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
	}
	check("FuzzAssemble", seedRunRequests(), "")
	check("FuzzUpload", seedSendRequests(), "uint16(7)\n")
}

// FuzzAssemble feeds arbitrary RunModelRequest chunks to the input
// assembler: it must never panic, and whatever it accepts must be complete,
// well-formed tensors within the byte limit.
func FuzzAssemble(f *testing.F) {
	for _, s := range seedRunRequests() {
		f.Add(s)
	}
	const limit = 4096
	f.Fuzz(func(t *testing.T, data []byte) {
		var req securedexchange.RunModelRequest
		if proto.Unmarshal(data, &req) != nil {
			return
		}
		a := newAssembler(asmSpecs, limit, &byteBudget{max: 1 << 40}, nil)
		for _, td := range req.GetInputTensors() {
			if a.add(td) != nil {
				return
			}
		}
		inputs, err := a.finish()
		if err != nil {
			return
		}
		total := 0
		for i, in := range inputs {
			if err := in.Validate(); err != nil {
				t.Fatalf("accepted a malformed tensor: %v", err)
			}
			if in.Name != asmSpecs[i].Name || in.DType != asmSpecs[i].DType {
				t.Fatalf("input %d is %s %s, want %s", i, in.Name, in.DType, asmSpecs[i])
			}
			total += len(in.Data)
		}
		if total > limit {
			t.Fatalf("accepted %d bytes over the %d limit", total, limit)
		}
		a.release()
	})
}

// FuzzUpload feeds an arbitrary SendModelRequest, its data cut into chunks
// of split bytes, to the upload assembler: it must never panic, never keep
// more than the limit, never reserve more than it keeps when it succeeds,
// and return exactly the bytes sent.
func FuzzUpload(f *testing.F) {
	for _, s := range seedSendRequests() {
		f.Add(s, uint16(7))
	}
	const limit = 1024
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		var req securedexchange.SendModelRequest
		if proto.Unmarshal(data, &req) != nil {
			return
		}
		chunk := int(split)%512 + 1
		all := req.GetData()
		st := store.New(4, 2*limit, nil)
		res := st.Reserve()
		defer res.Release()
		up := &upload{limit: limit, res: res}
		defer up.wipe()
		if up.declare(req.GetLength()) != nil {
			return
		}
		for off := 0; off < len(all); off += chunk {
			if err := up.addBytes(all[off:min(off+chunk, len(all))]); err != nil {
				if len(all) <= limit && req.GetLength() <= limit {
					t.Fatalf("refused a chunk of an upload within the limit: %v", err)
				}
				return
			}
		}
		got, err := up.finish()
		if err != nil {
			return
		}
		if len(got) > limit || !bytes.Equal(got, all) {
			t.Fatalf("upload returned %d bytes, sent %d (limit %d)", len(got), len(all), limit)
		}
		if res.Size() < int64(len(got)) {
			t.Fatalf("kept %d bytes but reserved only %d", len(got), res.Size())
		}
	})
}
