package blindai06

import (
	"bytes"
	"errors"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// limitSink is a modelSink with a size limit, like the server's.
type limitSink struct {
	limit    int
	declared uint64
	got      []byte
}

var errOver = errors.New("over the limit")

func (s *limitSink) Declare(n uint64) error {
	if n > uint64(s.limit) {
		return errOver
	}
	s.declared = n
	return nil
}

func (s *limitSink) Write(p []byte) (int, error) {
	if len(s.got)+len(p) > s.limit {
		return 0, errOver
	}
	s.got = append(s.got, p...)
	return len(p), nil
}

func fuzzSeeds(f *testing.F) {
	for _, v := range []any{
		map[string]any{"model": []uint16{1, 2, 255, 24, 23}, "length": 5, "model_name": "m", "optimize": true, "client_info": map[string]any{"uid": "u", "is_colab": false}},
		map[string]any{"model": []byte{1, 2, 3}},
		map[string]any{"model_id": "m", "model_hash": "", "inputs": []any{map[string]any{"info": map[string]any{"fact": []int{2, 3}, "datum_type": 0, "node_name": nil}, "bytes_data": make([]byte, 24)}}, "client_info": nil},
		map[string]any{"model_id": "m"},
	} {
		b, err := cbor.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xa1, 0x65, 'm', 'o', 'd', 'e', 'l', 0x9f, 1, 0x18, 200, 0xff})
	f.Add(bytes.Repeat([]byte{0x81}, 100))
}

// FuzzDecodeUpload feeds arbitrary bodies to the streaming upload
// decoder: it must never panic, never give the sink more than its limit,
// and, when it accepts a body, have given the sink exactly the model that
// the library decodes from it.
func FuzzDecodeUpload(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		sink := &limitSink{limit: 4096}
		if err := decodeUpload(bytes.NewReader(data), sink); err != nil {
			return
		}
		if len(sink.got) > sink.limit {
			t.Fatalf("the sink got %d bytes over its %d limit", len(sink.got), sink.limit)
		}
		var ref struct {
			Model cbor.RawMessage `cbor:"model"`
		}
		if err := cbor.Unmarshal(data, &ref); err != nil {
			return // the library is stricter (e.g. about unknown fields' contents)
		}
		var ints []int
		var raw []byte
		if cbor.Unmarshal(ref.Model, &ints) == nil {
			raw = make([]byte, len(ints))
			for i, v := range ints {
				raw[i] = byte(v)
			}
		} else if cbor.Unmarshal(ref.Model, &raw) != nil {
			t.Fatalf("accepted a model the library cannot read: %x", ref.Model)
		}
		if !bytes.Equal(raw, sink.got) {
			t.Fatalf("streamed %x, the library reads %x", sink.got, raw)
		}
	})
}

// FuzzDecodeRun feeds arbitrary bodies to the run request decoder: it
// must never panic, and what it accepts stays within the array limits.
func FuzzDecodeRun(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		req, _, err := decodeRun(bytes.NewReader(data))
		if err != nil {
			return
		}
		if len(req.Inputs) > maxArrayElements {
			t.Fatalf("accepted %d inputs", len(req.Inputs))
		}
		for _, in := range req.Inputs {
			if len(in.Info.Fact) > maxArrayElements {
				t.Fatalf("accepted %d dimensions", len(in.Info.Fact))
			}
		}
	})
}
