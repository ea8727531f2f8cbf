package blindai06

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"runtime"
	"testing"
)

// hashSink hashes what it gets and keeps nothing.
type hashSink struct {
	declared uint64
	n        int
	h        interface {
		Write([]byte) (int, error)
		Sum([]byte) []byte
	}
}

func (s *hashSink) Declare(n uint64) error { s.declared = n; return nil }

func (s *hashSink) Write(p []byte) (int, error) {
	s.n += len(p)
	return s.h.Write(p)
}

// TestUploadStreamsLargeArray: an 8 MiB model sent as 0.6 sends it (a
// CBOR array of one integer per byte, both encodings of an integer) is
// decoded without a Go value per byte: the decoder allocates a small,
// fixed amount whatever the model's size, and hands on exactly the bytes.
func TestUploadStreamsLargeArray(t *testing.T) {
	const n = 8 << 20
	model := make([]byte, n)
	for i := range model {
		model[i] = byte(i*7 + i>>11) // values below and above 23
	}
	var body bytes.Buffer
	body.Write(binary.BigEndian.AppendUint32([]byte{0xa2, 0x65, 'm', 'o', 'd', 'e', 'l', 0x9a}, n))
	for _, b := range model {
		if b < 24 {
			body.WriteByte(b)
		} else {
			body.Write([]byte{0x18, b})
		}
	}
	body.Write(binary.BigEndian.AppendUint32([]byte{0x66, 'l', 'e', 'n', 'g', 't', 'h', 0x1a}, n))
	sink := &hashSink{h: sha256.New()}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := decodeUpload(bytes.NewReader(body.Bytes()), sink); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	want := sha256.Sum256(model)
	if sink.declared != n || sink.n != n || !bytes.Equal(sink.h.Sum(nil), want[:]) {
		t.Fatalf("declared %d, got %d bytes, hash differs or not", sink.declared, sink.n)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("decoding a %d-byte model allocated %d bytes; it must not grow with the model", n, alloc)
	}
}
