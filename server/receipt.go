package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

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
	// failed is when evidence last failed to give an id (zero: never, or
	// it gave one since), failErr why.
	failed  time.Time
	failErr error
	// issuing, a one-slot semaphore, lets one signed request at a time
	// issue evidence to learn the id; the others wait for its answer, or
	// for their own context to end.
	issuing chan struct{}
}

// replicaRetry is how long a replica whose evidence could not give its id
// answers signed requests with that failure before it issues evidence
// again: a quote costs the platform, and its answer would not change
// sooner. Evidence issued for a client meanwhile is still learned from.
const replicaRetry = 30 * time.Second

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
		r.fail(err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed, r.failErr = time.Time{}, nil
	if err != nil {
		// The evidence names no platform: receipts carry no replica id,
		// which is what a verifier derives from such evidence too.
		r.known, r.id, r.source = true, nil, ""
		return
	}
	r.known, r.id, r.source = true, id, source
}

// fail records that evidence could not give the id, unless an id is known.
func (r *replicaState) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.known {
		r.failed, r.failErr = time.Now(), err
	}
}

// get returns the replica id and how it was derived, if known.
func (r *replicaState) get() (id []byte, source string, known bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.id, r.source, r.known
}

// recentFailure returns why evidence could not give the id, if that was
// less than replicaRetry ago.
func (r *replicaState) recentFailure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failErr != nil && time.Since(r.failed) < replicaRetry {
		return r.failErr
	}
	return nil
}

// replicaID returns this replica's id for a receipt, issuing evidence to
// learn it if no evidence was issued yet. A failure is answered again for
// replicaRetry without issuing evidence, and concurrent requests issue it
// once.
func (s *Server) replicaID(ctx context.Context) ([]byte, string, error) {
	if id, source, ok := s.replica.get(); ok {
		return id, source, nil
	}
	select {
	case s.replica.issuing <- struct{}{}:
		defer func() { <-s.replica.issuing }()
	case <-ctx.Done():
		return nil, "", status.FromContextError(ctx.Err()).Err()
	}
	if id, source, ok := s.replica.get(); ok { // learned while waiting
		return id, source, nil
	}
	if err := s.replica.recentFailure(); err != nil {
		return nil, "", errorf(codes.Unavailable, "this replica cannot name itself in a receipt: its evidence failed less than %s ago (%v)", replicaRetry, err)
	}
	if _, err := s.issue(ctx, nil); err != nil {
		if ctx.Err() == nil {
			s.replica.fail(errors.New(status.Convert(err).Message()))
		}
		return nil, "", err
	}
	if id, source, ok := s.replica.get(); ok {
		return id, source, nil
	}
	return nil, "", errorf(codes.Unavailable, "this replica cannot derive its id from its own evidence, so no signed receipt can name the replica: %v", s.replica.recentFailure())
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
