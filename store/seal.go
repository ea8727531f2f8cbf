package store

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Sealed model files: a header in clear, authenticated, then the model in
// AES-256-GCM segments.
//
//	magic "BFSEAL01" | u32 header length | header (JSON) | segments
//
// Segment i (0-based) is AES-256-GCM of up to SegmentSize plaintext bytes
// with nonce = 8 random bytes from the header || u32 i, and additional data
// SHA-256(magic || header) || u32 i || final flag (1 on the last segment).
// The header (model id, owner, public flag, tensor specs, size, SHA-256) is
// thus authenticated with every segment; segments cannot be reordered,
// dropped or truncated without detection. The key is derived with HKDF-
// SHA-256 from the platform sealing key.
const (
	sealMagic = "BFSEAL01"
	// SegmentSize is the plaintext size of one sealed segment.
	SegmentSize = 1 << 20
	// maxHeader bounds the header a loader reads.
	maxHeader = 1 << 20
	// SealedExt is the extension of sealed model files.
	SealedExt = ".sealed"
	tmpPrefix = ".tmp-"
)

// ErrSealed means a sealed file is corrupted, truncated, or sealed under
// another key.
var ErrSealed = errors.New("sealed model file cannot be opened")

// SealedSpec is a tensor spec as stored in a sealed header.
type SealedSpec struct {
	Name  string  `json:"name"`
	DType int32   `json:"dtype"`
	Shape []int64 `json:"shape"`
}

// SealedHeader describes a sealed model. It is stored in clear but
// authenticated.
type SealedHeader struct {
	ModelID     string       `json:"model_id"`
	Owner       string       `json:"owner"`
	Public      bool         `json:"public"`
	Size        int64        `json:"size"`
	SHA256      string       `json:"sha256"`
	Created     time.Time    `json:"created"`
	Inputs      []SealedSpec `json:"inputs"`
	Outputs     []SealedSpec `json:"outputs"`
	NoncePrefix []byte       `json:"nonce_prefix"`
}

// Sealer writes and reads sealed model files in one folder.
type Sealer struct {
	dir  string
	aead cipher.AEAD
}

// NewSealer returns a sealer for dir (created with mode 0700) whose key is
// derived from platformKey (at least 16 bytes).
func NewSealer(dir string, platformKey []byte) (*Sealer, error) {
	if len(platformKey) < 16 {
		return nil, fmt.Errorf("sealing: platform key is %d bytes, need at least 16", len(platformKey))
	}
	key, err := hkdf.Key(sha256.New, platformKey, nil, "blindfold sealed model v1", 32)
	if err != nil {
		return nil, fmt.Errorf("sealing: deriving key: %w", err)
	}
	block, err := aes.NewCipher(key)
	clear(key)
	if err != nil {
		return nil, fmt.Errorf("sealing: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("sealing: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sealing: %w", err)
	}
	return &Sealer{dir: dir, aead: aead}, nil
}

// Path returns the file that holds owner's sealed model id: named by the
// SHA-256 of the id when owner is "" (no authentication, one namespace),
// else of the owner's length (8 bytes, big-endian), the owner and the id,
// so that any id is a safe file name and each owner's ids are their own.
func (s *Sealer) Path(owner, id string) string {
	name := []byte(id)
	if owner != "" {
		name = binary.BigEndian.AppendUint64(nil, uint64(len(owner)))
		name = append(append(name, owner...), id...)
	}
	sum := sha256.Sum256(name)
	return filepath.Join(s.dir, hex.EncodeToString(sum[:])+SealedExt)
}

func segmentAD(headerHash []byte, i uint32, final bool) []byte {
	ad := make([]byte, 0, len(headerHash)+5)
	ad = append(ad, headerHash...)
	ad = binary.BigEndian.AppendUint32(ad, i)
	if final {
		return append(ad, 1)
	}
	return append(ad, 0)
}

func (s *Sealer) nonce(prefix []byte, i uint32) []byte {
	return binary.BigEndian.AppendUint32(append(make([]byte, 0, 12), prefix...), i)
}

// Save seals model under h atomically: it writes a temporary file, syncs
// it, renames it into place and syncs the folder. h.NoncePrefix, Size and
// SHA256 are set by Save. No plaintext byte reaches the disk.
func (s *Sealer) Save(h SealedHeader, model []byte) error { return s.save(h, model, false) }

// SaveNew is Save that never replaces a sealed file: when the owner's
// model id is sealed in the folder already it fails with an error that
// wraps ErrExists. The check and the creation are one atomic step (a hard
// link), also between processes that share the folder.
func (s *Sealer) SaveNew(h SealedHeader, model []byte) error { return s.save(h, model, true) }

func (s *Sealer) save(h SealedHeader, model []byte, exclusive bool) (err error) {
	h.NoncePrefix = make([]byte, 8)
	if _, err := rand.Read(h.NoncePrefix); err != nil {
		return fmt.Errorf("sealing: %w", err)
	}
	h.Size = int64(len(model))
	sum := sha256.Sum256(model)
	h.SHA256 = hex.EncodeToString(sum[:])
	if len(model)/SegmentSize >= 1<<32-1 {
		return fmt.Errorf("sealing: model too large")
	}
	header, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("sealing: %w", err)
	}
	hh := sha256.Sum256(append([]byte(sealMagic), header...))

	f, err := os.CreateTemp(s.dir, tmpPrefix)
	if err != nil {
		return fmt.Errorf("sealing: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(f, 4<<20)
	w.WriteString(sealMagic)
	w.Write(binary.BigEndian.AppendUint32(nil, uint32(len(header))))
	w.Write(header)
	out := make([]byte, 0, SegmentSize+s.aead.Overhead())
	for i := uint32(0); ; i++ {
		off := int(i) * SegmentSize
		end := min(off+SegmentSize, len(model))
		final := end == len(model)
		out = s.aead.Seal(out[:0], s.nonce(h.NoncePrefix, i), model[off:end], segmentAD(hh[:], i, final))
		if _, err := w.Write(out); err != nil {
			return fmt.Errorf("sealing: writing %s: %w", tmp, err)
		}
		if final {
			break
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("sealing: writing %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sealing: syncing %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sealing: %w", err)
	}
	if exclusive {
		err := os.Link(tmp, s.Path(h.Owner, h.ModelID))
		os.Remove(tmp)
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("sealing: %w: %q is sealed already", ErrExists, h.ModelID)
		}
		if err != nil {
			return fmt.Errorf("sealing: %w", err)
		}
		return syncDir(s.dir)
	}
	if err := os.Rename(tmp, s.Path(h.Owner, h.ModelID)); err != nil {
		return fmt.Errorf("sealing: %w", err)
	}
	return syncDir(s.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sealing: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sealing: syncing folder %s: %w", dir, err)
	}
	return nil
}

// Open reads and decrypts a sealed file. maxSize bounds the model size it
// accepts. The returned model bytes are the caller's to zero.
func (s *Sealer) Open(path string, maxSize int64) (SealedHeader, []byte, error) {
	var h SealedHeader
	f, err := os.Open(path)
	if err != nil {
		return h, nil, fmt.Errorf("sealing: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 4<<20)
	fail := func(format string, args ...any) (SealedHeader, []byte, error) {
		return SealedHeader{}, nil, fmt.Errorf("%w: %s: %s", ErrSealed, filepath.Base(path), fmt.Sprintf(format, args...))
	}
	pre := make([]byte, len(sealMagic)+4)
	if _, err := io.ReadFull(r, pre); err != nil {
		return fail("truncated before the header")
	}
	if string(pre[:len(sealMagic)]) != sealMagic {
		return fail("not a sealed model file (bad magic)")
	}
	n := binary.BigEndian.Uint32(pre[len(sealMagic):])
	if n == 0 || n > maxHeader {
		return fail("header length %d out of range", n)
	}
	header := make([]byte, n)
	if _, err := io.ReadFull(r, header); err != nil {
		return fail("truncated header")
	}
	dec := json.NewDecoder(strings.NewReader(string(header)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return fail("header: %v", err)
	}
	if len(h.NoncePrefix) != 8 || h.Size <= 0 || h.Size > maxSize || h.ModelID == "" {
		return fail("header values out of range (size %d, limit %d)", h.Size, maxSize)
	}
	hh := sha256.Sum256(append([]byte(sealMagic), header...))
	model := make([]byte, h.Size)
	seg := make([]byte, SegmentSize+s.aead.Overhead())
	for i := uint32(0); ; i++ {
		off := int64(i) * SegmentSize
		end := min(off+SegmentSize, h.Size)
		final := end == h.Size
		ct := seg[:end-off+int64(s.aead.Overhead())]
		if _, err := io.ReadFull(r, ct); err != nil {
			clear(model)
			return fail("truncated at segment %d", i)
		}
		if _, err := s.aead.Open(model[off:off], s.nonce(h.NoncePrefix, i), ct, segmentAD(hh[:], i, final)); err != nil {
			clear(model)
			return fail("segment %d does not authenticate (corrupted, or sealed under another key)", i)
		}
		if final {
			break
		}
	}
	if _, err := r.ReadByte(); err != io.EOF {
		clear(model)
		return fail("trailing bytes after the last segment")
	}
	sum := sha256.Sum256(model)
	if hex.EncodeToString(sum[:]) != h.SHA256 {
		clear(model)
		return fail("model hash differs from the header")
	}
	return h, model, nil
}

// Remove deletes the sealed file of owner's model id, if any.
func (s *Sealer) Remove(owner, id string) error {
	err := os.Remove(s.Path(owner, id))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sealing: %w", err)
	}
	if err == nil {
		return syncDir(s.dir)
	}
	return nil
}

// Files lists the sealed files, sorted, and removes temporary files left by
// an interrupted save (returning their names).
func (s *Sealer) Files() (sealed, removedTemps []string, err error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("sealing: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, tmpPrefix):
			if err := os.Remove(filepath.Join(s.dir, name)); err == nil {
				removedTemps = append(removedTemps, name)
			}
		case strings.HasSuffix(name, SealedExt) && e.Type().IsRegular():
			sealed = append(sealed, filepath.Join(s.dir, name))
		}
	}
	sort.Strings(sealed)
	return sealed, removedTemps, nil
}
