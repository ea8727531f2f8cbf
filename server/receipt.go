package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/verifier"
	"github.com/blindfold-ai/blindfold/internal/wire"
)

// replicaState is the identifier of this replica that receipts carry:
// derived from the platform of the evidence it serves (learned from the
// first evidence issued), or in simulation a random value made at start.
type replicaState struct {
	mu     sync.Mutex
	known  bool // id and source hold the answer (id may be empty: none)
	id     []byte
	source string
}

// initSimulation makes the random id of a simulation-mode replica.
func (r *replicaState) initSimulation() {
	id := make([]byte, 16)
	rand.Read(id)
	r.mu.Lock()
	r.known, r.id, r.source = true, id, verifier.ReplicaSimulation
	r.mu.Unlock()
}

// learn records the replica id of evidence this replica issued. The id of
// the latest evidence wins: a PCK certificate reissued after a TCB
// recovery changes it.
func (r *replicaState) learn(ev *attest.Evidence, log *slog.Logger) {
	id, source, err := verifier.ReplicaID(ev)
	if err != nil && !errors.Is(err, verifier.ErrNoReplicaID) {
		log.Warn("cannot derive the replica id from this replica's evidence", "err", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		// The evidence names no platform: receipts carry no replica id,
		// which is what a verifier derives from such evidence too.
		r.known, r.id, r.source = true, nil, ""
		return
	}
	r.known, r.id, r.source = true, id, source
}

// get returns the replica id and how it was derived, if known.
func (r *replicaState) get() (id []byte, source string, known bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.id, r.source, r.known
}

// replicaID returns this replica's id for a receipt, issuing evidence to
// learn it if no evidence was issued yet.
func (s *Server) replicaID(ctx context.Context) ([]byte, string, error) {
	if id, source, ok := s.replica.get(); ok {
		return id, source, nil
	}
	if _, err := s.issue(ctx, nil); err != nil {
		return nil, "", err
	}
	if id, source, ok := s.replica.get(); ok {
		return id, source, nil
	}
	return nil, "", errorf(codes.Unavailable, "this replica's evidence does not say which platform it runs on, so no signed receipt can name the replica")
}

// requestNonce returns the client's nonce for the request's receipt, from
// the metadata key wire.NonceMetadata (hex, 1 to attest.MaxNonceBytes
// bytes), or nil when the client sent none.
func requestNonce(ctx context.Context) ([]byte, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(wire.NonceMetadata)
	switch len(vals) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, errorf(codes.InvalidArgument, "metadata %s appears %d times; send one nonce", wire.NonceMetadata, len(vals))
	}
	v := vals[0]
	if len(v) == 0 || len(v) > 2*attest.MaxNonceBytes {
		return nil, errorf(codes.InvalidArgument, "metadata %s is %d hex digits; a nonce is 1 to %d bytes (2 to %d hex digits)", wire.NonceMetadata, len(v), attest.MaxNonceBytes, 2*attest.MaxNonceBytes)
	}
	n, err := hex.DecodeString(v)
	if err != nil {
		return nil, errorf(codes.InvalidArgument, "metadata %s is not hex: %v", wire.NonceMetadata, err)
	}
	return n, nil
}

// receipt returns the receipt of a signed reply with the request's nonce
// and this replica's id; a run adds the model's hash and the outputs'.
func (s *Server) receipt(ctx context.Context, nonce []byte) (*securedexchange.Receipt, error) {
	id, source, err := s.replicaID(ctx)
	if err != nil {
		return nil, err
	}
	return &securedexchange.Receipt{Nonce: nonce, ReplicaId: id, ReplicaSource: source}, nil
}
