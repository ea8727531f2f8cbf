package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func testModel(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestSealRoundTrip(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	for _, n := range []int{1, 100, SegmentSize - 1, SegmentSize, SegmentSize + 1, 3*SegmentSize + 17} {
		s, err := NewSealer(t.TempDir(), key)
		if err != nil {
			t.Fatal(err)
		}
		model := testModel(n)
		h := SealedHeader{ModelID: "m/../x", Owner: "alice", Public: true, Inputs: []SealedSpec{{Name: "x", DType: 0, Shape: []int64{-1, 4}}}}
		if err := s.Save(h, model); err != nil {
			t.Fatal(err)
		}
		files, temps, err := s.Files()
		if err != nil || len(files) != 1 || len(temps) != 0 {
			t.Fatalf("files %v temps %v err %v", files, temps, err)
		}
		raw, _ := os.ReadFile(files[0])
		if n >= 64 && bytes.Contains(raw, model[n/2:n/2+32]) {
			t.Fatal("sealed file holds plaintext model bytes")
		}
		got, back, err := s.Open(files[0], 1<<30)
		if err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		if !bytes.Equal(back, model) || got.ModelID != h.ModelID || got.Owner != "alice" || !got.Public || got.Inputs[0].Name != "x" {
			t.Fatalf("size %d: round trip differs", n)
		}
	}
}

func TestSealRefusesTampering(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	dir := t.TempDir()
	s, _ := NewSealer(dir, key)
	model := testModel(2*SegmentSize + 5)
	if err := s.Save(SealedHeader{ModelID: "m", Owner: "alice"}, model); err != nil {
		t.Fatal(err)
	}
	path := s.Path("alice", "m")
	orig, _ := os.ReadFile(path)
	try := func(name string, data []byte, sealer *Sealer) {
		t.Helper()
		p := filepath.Join(t.TempDir(), "x.sealed")
		os.WriteFile(p, data, 0o600)
		if _, _, err := sealer.Open(p, 1<<30); !errors.Is(err, ErrSealed) {
			t.Errorf("%s: Open = %v, want ErrSealed", name, err)
		}
	}
	// One flipped bit anywhere: header, each segment, tags.
	for _, off := range []int{3, 14, 40, len(orig) / 2, len(orig) - 1, len(orig) - SegmentSize - 20} {
		b := bytes.Clone(orig)
		b[off] ^= 0x10
		try("bit flip", b, s)
	}
	try("truncated", orig[:len(orig)-SegmentSize], s)
	try("truncated mid-segment", orig[:len(orig)-3], s)
	try("trailing bytes", append(bytes.Clone(orig), 0), s)
	try("empty", nil, s)
	other, _ := NewSealer(t.TempDir(), bytes.Repeat([]byte{8}, 32))
	try("other key", orig, other)
	// The owner in the header cannot be swapped.
	b := bytes.Replace(bytes.Clone(orig), []byte(`"owner":"alice"`), []byte(`"owner":"eve00"`), 1)
	try("owner swapped", b, s)
	if _, _, err := s.Open(path, 100); !errors.Is(err, ErrSealed) {
		t.Errorf("over the size limit: %v", err)
	}
}

func TestSealTempFilesRemoved(t *testing.T) {
	dir := t.TempDir()
	s, _ := NewSealer(dir, bytes.Repeat([]byte{1}, 16))
	os.WriteFile(filepath.Join(dir, tmpPrefix+"123"), []byte("partial"), 0o600)
	files, temps, err := s.Files()
	if err != nil || len(files) != 0 || len(temps) != 1 {
		t.Fatalf("files %v temps %v err %v", files, temps, err)
	}
	if _, err := os.Stat(filepath.Join(dir, tmpPrefix+"123")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("temporary file left")
	}
	if err := s.Remove("", "absent"); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSealer(dir, []byte("short")); err == nil {
		t.Fatal("a 5-byte key was accepted")
	}
}

func TestSaveNewNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	s, err := NewSealer(dir, bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	first, second := []byte("first model bytes"), []byte("second model")
	if err := s.SaveNew(SealedHeader{ModelID: "m", Owner: "alice"}, first); err != nil {
		t.Fatal(err)
	}
	err = s.SaveNew(SealedHeader{ModelID: "m", Owner: "alice"}, second)
	if !errors.Is(err, ErrExists) {
		t.Fatalf("a second SaveNew of the same id: %v, want ErrExists", err)
	}
	h, got, err := s.Open(s.Path("alice", "m"), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, first) || h.Size != int64(len(first)) {
		t.Fatalf("the sealed file holds %q, want the first model", got)
	}
	if err := s.SaveNew(SealedHeader{ModelID: "m", Owner: "bob"}, second); err != nil {
		t.Fatalf("the same id of another owner: %v", err)
	}
	sealed, temps, err := s.Files()
	if err != nil || len(sealed) != 2 || len(temps) != 0 {
		t.Fatalf("files %v, temporaries %v, err %v; want two sealed files and no temporary left", sealed, temps, err)
	}
}
