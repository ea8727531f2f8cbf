package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/blindfold-ai/blindfold/engine"
	"github.com/blindfold-ai/blindfold/store"
	"github.com/blindfold-ai/blindfold/tensor"
)

// gramineSealingKey is Gramine's per-enclave (MRENCLAVE) sealing key.
const gramineSealingKey = "/dev/attestation/keys/_sgx_mrenclave"

// sealingKey reads the platform sealing key. In simulation, with no key file
// configured, it makes one in the state folder (mode 0600) and warns that it
// protects nothing against whoever can read that folder.
func (s *Server) sealingKey() ([]byte, error) {
	path := s.cfg.SealingKeyFile
	if path == "" && !s.cfg.Simulation {
		switch s.cfg.TEE {
		case TEETDX, TEESNP:
			return s.cvmSealingKey()
		}
		path = gramineSealingKey
	}
	if path == "" {
		path = filepath.Join(s.cfg.StateDir, "sealing.key")
		key := make([]byte, 32)
		if _, err := io.ReadFull(rand.Reader, key); err != nil {
			return nil, fmt.Errorf("server: sealing key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		switch {
		case err == nil:
			_, werr := f.Write(key)
			if serr := f.Sync(); werr == nil {
				werr = serr
			}
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				return nil, fmt.Errorf("server: writing sealing key %s: %w", path, werr)
			}
			s.log.Warn("simulation: generated a sealing key file for saved models; it protects them only as well as the file's permissions do (anyone who can read it can read every saved model)", "path", path)
			return key, nil
		case !errors.Is(err, os.ErrExist):
			return nil, fmt.Errorf("server: sealing key: %w", err)
		}
		clear(key)
		s.log.Warn("simulation: saved models are sealed under a plain key file, which protects nothing against whoever can read it", "path", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("server: sealing key: %w", err)
	}
	if fi.Mode().IsRegular() && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("server: sealing key %s is readable by others (mode %v); make it 0600", path, fi.Mode().Perm())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("server: sealing key: %w", err)
	}
	defer f.Close()
	key, err := io.ReadAll(io.LimitReader(f, 64))
	if err != nil {
		return nil, fmt.Errorf("server: reading sealing key %s: %w", path, err)
	}
	if len(key) < 16 {
		clear(key)
		return nil, fmt.Errorf("server: sealing key %s holds %d bytes, need at least 16", path, len(key))
	}
	return key, nil
}

func sealedSpecs(specs []engine.TensorSpec) []store.SealedSpec {
	out := make([]store.SealedSpec, len(specs))
	for i, sp := range specs {
		out[i] = store.SealedSpec{Name: sp.Name, DType: int32(sp.DType), Shape: sp.Shape}
	}
	return out
}

// engineSpecs converts the specs of a sealed header.
func engineSpecs(specs []store.SealedSpec) []engine.TensorSpec {
	out := make([]engine.TensorSpec, len(specs))
	for i, sp := range specs {
		out[i] = engine.TensorSpec{Name: sp.Name, DType: tensor.DType(sp.DType), Shape: sp.Shape}
	}
	return out
}

func sameSpecs(a []store.SealedSpec, b []engine.TensorSpec) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || tensor.DType(a[i].DType) != b[i].DType || fmt.Sprint(a[i].Shape) != fmt.Sprint(b[i].Shape) {
			return false
		}
	}
	return true
}

// seal saves a sealed copy of a loaded model.
func (s *Server) seal(m *store.Model, model []byte) error {
	h := store.SealedHeader{
		ModelID: m.ID, Owner: m.Owner, Public: m.Public, Created: m.Loaded.UTC(),
		Inputs: sealedSpecs(m.Session.Inputs()), Outputs: sealedSpecs(m.Session.Outputs()),
	}
	if s.cluster != nil {
		// Another replica may seal the same owner's id at the same time:
		// the first one wins, the other fails with ErrExists.
		if err := s.sealer.SaveNew(h, model); err != nil {
			return err
		}
		s.clusterSaved(m.Owner, m.ID)
		return nil
	}
	return s.sealer.Save(h, model)
}

// loadSealed loads every sealed model at start. A file that cannot be
// opened, loaded or added is reported and skipped; it never stops the
// others.
func (s *Server) loadSealed() {
	files, temps, err := s.sealer.Files()
	if err != nil {
		s.log.Error("cannot list sealed models", "err", err)
		return
	}
	for _, t := range temps {
		s.log.Warn("removed an incomplete sealed model left by an interrupted upload", "file", t)
	}
	loaded := 0
	for _, path := range files {
		if err := s.loadSealedFile(path); err != nil {
			s.log.Error("skipping sealed model", "file", filepath.Base(path), "err", err)
			continue
		}
		loaded++
	}
	if len(files) > 0 {
		s.log.Info("sealed models loaded", "loaded", loaded, "skipped", len(files)-loaded)
	}
}

func (s *Server) loadSealedFile(path string) error {
	h, model, err := s.sealer.Open(path, int64(s.cfg.MaxModelBytes))
	if err != nil {
		return err
	}
	defer clear(model)
	if err := checkStoredModelID(h.ModelID); err != nil {
		return fmt.Errorf("model id %q: %v", h.ModelID, err)
	}
	if want := s.sealer.Path(h.Owner, h.ModelID); want != path {
		// Files saved before model ids were per owner are named after
		// the id alone; the header (authenticated) names the owner, so
		// the file moves to its owner's name.
		if h.Owner == "" || s.sealer.Path("", h.ModelID) != path {
			return fmt.Errorf("file name does not match its model id %q", h.ModelID)
		}
		if err := os.Rename(path, want); err != nil {
			return fmt.Errorf("model %q: moving to its owner's file name: %w", h.ModelID, err)
		}
		s.log.Info("sealed model renamed to its owner's namespace", "model_id", h.ModelID, "owner", h.Owner)
	}
	if checkModelID(h.ModelID) != nil {
		s.log.Warn("a saved model's id would be refused for a new upload (it holds characters that are not printable text); it is loaded as saved", "model_id", fmt.Sprintf("%+q", h.ModelID))
	}
	var hash [32]byte
	sum, err := hex.DecodeString(h.SHA256) // checked by Open
	if err != nil || len(sum) != len(hash) {
		return fmt.Errorf("model %q: bad hash in header", h.ModelID)
	}
	copy(hash[:], sum)
	m := &store.Model{ID: h.ModelID, Hash: hash, Size: h.Size, Loaded: time.Now(), Owner: h.Owner, Public: h.Public, Saved: true,
		Inputs: engineSpecs(h.Inputs), Outputs: engineSpecs(h.Outputs)}
	if !s.models.Fits(h.Size) {
		// The memory budget is full: the model is held evicted and loads
		// on its first run (its copy was just decrypted and verified).
		if err := s.models.AddEvicted(m); err != nil {
			return fmt.Errorf("model %q: %w", h.ModelID, err)
		}
		s.log.Info("sealed model held evicted (the memory budget is full); it loads on its first run", "model_id", h.ModelID, "bytes", h.Size, "owner", h.Owner)
		return nil
	}
	sess, err := s.rt.Load(model)
	if err != nil {
		return fmt.Errorf("loading model %q: %w", h.ModelID, err)
	}
	if !sameSpecs(h.Inputs, sess.Inputs()) || !sameSpecs(h.Outputs, sess.Outputs()) {
		sess.Close()
		return fmt.Errorf("model %q: tensor specs differ from the sealed header", h.ModelID)
	}
	res := s.models.ReserveFor(h.Owner)
	defer res.Release()
	if err := res.Grow(h.Size); err != nil {
		sess.Close()
		return fmt.Errorf("model %q: %w", h.ModelID, err)
	}
	m.Session = sess
	if err := s.models.Add(m, res); err != nil {
		sess.Close()
		return fmt.Errorf("model %q: %w", h.ModelID, err)
	}
	s.log.Info("sealed model loaded", "model_id", h.ModelID, "bytes", h.Size, "owner", h.Owner)
	return nil
}
