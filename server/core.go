package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/api/untrusted"
	"github.com/blindfold-ai/blindfold/engine"
	"github.com/blindfold-ai/blindfold/internal/bufpool"
	"github.com/blindfold-ai/blindfold/store"
	"github.com/blindfold-ai/blindfold/tensor"
)

// Core is the protocol-independent request handling that every front end
// calls: authentication, uploads (limits, loading, sealing, the store),
// runs (model lookup and reload, input assembly within the limits, fair
// run slots, the engine) and deletes. A front end only translates its wire
// format to these calls and their errors (gRPC status errors; see
// HTTPStatus) back to its own.
type Core struct{ s *Server }

// BlindAI06Frontend is the Name of the front end of BlindAI 0.6's
// protocol (package server/blindai06), which blindai06 = true needs.
const BlindAI06Frontend = "blindai06"

// Frontend is a protocol served beside the gRPC ports (see
// Options.Frontends). The server starts it after its own ports and shuts
// it down with them.
type Frontend interface {
	// Name names the protocol in logs and errors.
	Name() string
	// Start listens and serves in the background, sending every request
	// to c. A front end the configuration leaves off returns nil at once.
	Start(c *Core) error
	// Shutdown stops accepting requests, lets those in flight finish until
	// ctx ends, then cuts the rest.
	Shutdown(ctx context.Context) error
}

// Config returns the server's configuration.
func (c *Core) Config() Config { return c.s.cfg }

// Logger returns the server's logger.
func (c *Core) Logger() *slog.Logger { return c.s.log }

// RecordRequest counts one finished request of the front end in the
// server's metrics (see Server.RecordRequest).
func (c *Core) RecordRequest(port, protocol, rpc, code string, elapsed time.Duration, in, out int64) {
	c.s.RecordRequest(port, protocol, rpc, code, elapsed, in, out)
}

// HostCertificate returns the operator's certificate and key, served on
// unattested ports.
func (c *Core) HostCertificate() tls.Certificate { return c.s.hostTLS }

// AttestedCertificate returns the attested certificate and key (SAN
// blindai-srv), whose hash the evidence carries, served on attested ports.
func (c *Core) AttestedCertificate() tls.Certificate { return c.s.id.Certificate }

// AttestedCertificateDER returns the DER of the attested certificate.
func (c *Core) AttestedCertificateDER() []byte { return c.s.id.DER }

// Evidence returns the evidence and collateral the gRPC untrusted port
// serves (GetSgxQuoteWithCollateral): fresh, bound to the attested
// certificate and no nonce. In simulation it fails with
// FAILED_PRECONDITION.
func (c *Core) Evidence(ctx context.Context) (quote []byte, collateral *untrusted.SgxCollateral, err error) {
	ev, err := c.s.evidence(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	return ev.GetQuote(), ev.GetCollateral(), nil
}

// Authorize authenticates a request by its bearer token ("" when it has
// none) and admits it under the subject's rate and concurrency limits.
// release must be called when the request ends. subject is "" when
// authentication is off.
func (c *Core) Authorize(token string) (subject string, release func(), err error) {
	subject, err = c.s.auth.subjectOf(token)
	if err != nil {
		return "", nil, err
	}
	release, err = c.s.auth.admit(subject)
	if err != nil {
		return "", nil, err
	}
	return subject, release, nil
}

// anonymousSubject is the subject of requests without a token on a server
// that requires one (see AuthorizeAnonymous). No token may claim it, so it
// owns no model and sees only public ones.
const anonymousSubject = "\x00anonymous"

// AuthorizeAnonymous admits a request that carries no token, for clients
// that have none (BlindAI 0.6). Without authentication it is
// Authorize(""). With authentication required, the request gets a subject
// that owns nothing: it can run public models only, and its uploads and
// deletes find nothing of its own (front ends should refuse those with
// Authorize instead). All anonymous requests share one subject's rate and
// concurrency limits.
func (c *Core) AuthorizeAnonymous() (subject string, release func(), err error) {
	if c.s.auth.mode == AuthNone {
		return c.Authorize("")
	}
	release, err = c.s.auth.admit(anonymousSubject)
	if err != nil {
		return "", nil, err
	}
	return anonymousSubject, release, nil
}

// UploadSpec describes an upload before its bytes arrive.
type UploadSpec struct {
	// ID is the model's id; empty: a fresh UUID.
	ID string
	// Declared is the model's length in bytes if known beforehand (0:
	// unknown); it sizes the buffer and must match what arrives.
	Declared uint64
	// Public lets every subject run the model.
	Public bool
	// Save keeps a sealed copy that survives restarts and eviction.
	Save bool
	// check compares the loaded model's tensors with what the client
	// declared (gRPC only).
	check func(inputs, outputs []engine.TensorSpec) error
}

// UploadResult describes a model the store accepted.
type UploadResult struct {
	// ID is the model's id.
	ID string
	// Hash is SHA-256 of the model's bytes.
	Hash [32]byte
	// Inputs and Outputs are the model's tensors.
	Inputs, Outputs []engine.TensorSpec
}

// ModelSink takes an upload's bytes as they arrive, counting them against
// max_model_bytes and the store's memory budget before keeping them.
type ModelSink struct{ u *upload }

// Declare announces the model's total length before its bytes, sizing
// the buffer once; it is refused when over the limits. A later Declare
// must repeat the same length.
func (m *ModelSink) Declare(n uint64) error { return m.u.declare(n) }

// Write keeps p (copied); it fails once the model is over the limits.
func (m *ModelSink) Write(p []byte) (int, error) {
	if err := m.u.addBytes(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Upload receives a model through fill (which writes its bytes to the
// sink and returns when they have all arrived), loads it in a load slot,
// seals it if asked and adds it to the store under subject.
func (c *Core) Upload(ctx context.Context, subject string, spec UploadSpec, fill func(*ModelSink) error) (*UploadResult, error) {
	s := c.s
	id := spec.ID
	if id == "" {
		id = uuid.NewString()
	} else if err := checkModelID(id); err != nil {
		return nil, err
	}
	if spec.Save && s.sealer == nil {
		return nil, errorf(codes.FailedPrecondition, "this server cannot save models: %v; upload without saving to keep the model in memory only", errNoCVMSealingKey)
	}
	// The id is this upload's until it ends: nobody else can upload, run or
	// delete under it meanwhile, so the sealed copy below can be written
	// before the model becomes visible.
	if s.cluster != nil {
		s.clusterRefresh(subject, id)
	}
	if err := s.models.Claim(subject, id); err != nil {
		return nil, errorf(codes.AlreadyExists, "you already have a model with id %q loaded or being uploaded; delete it first or choose another id", id)
	}
	defer s.models.Unclaim(subject, id)
	res := s.models.ReserveFor(subject)
	defer res.Release()
	up := &upload{limit: int64(s.cfg.MaxModelBytes), res: res}
	defer up.wipe()
	if err := up.declare(spec.Declared); err != nil {
		return nil, err
	}
	if err := fill(&ModelSink{u: up}); err != nil {
		return nil, err
	}
	buf, err := up.finish()
	if err != nil {
		return nil, err
	}
	hash := sha256.Sum256(buf)
	sess, err := s.loadModel(ctx, id, buf)
	if err != nil {
		return nil, err
	}
	if spec.check != nil {
		if err := spec.check(sess.Inputs(), sess.Outputs()); err != nil {
			sess.Close()
			return nil, err
		}
	}
	m := &store.Model{ID: id, Hash: hash, Size: int64(len(buf)), Session: sess, Loaded: time.Now(), Owner: subject, Public: spec.Public,
		Inputs: sess.Inputs(), Outputs: sess.Outputs()}
	if spec.Save || s.cluster != nil { // a cluster keeps every model in its shared store
		if err := s.seal(m, buf); err != nil {
			sess.Close()
			if errors.Is(err, store.ErrExists) {
				return nil, errorf(codes.AlreadyExists, "you already have a model with id %q (uploaded through another replica); delete it first or choose another id", id)
			}
			s.log.Error("cannot save a sealed copy; upload refused", "model_id", id, "err", err)
			return nil, errorf(codes.Unavailable, "the server could not save the model (save_model): %v; nothing was kept", err)
		}
		m.Saved = true
	}
	up.wipe() // the engine holds the model now
	if err := s.models.AddIf(m, res, ctx.Err); err != nil {
		sess.Close()
		if m.Saved {
			if rerr := s.sealer.Remove(subject, id); rerr != nil {
				s.log.Error("upload not kept, and its sealed copy could not be removed", "model_id", id, "err", rerr)
			}
		}
		if st := contextStatus(err); st != nil {
			return nil, st
		}
		switch {
		case errors.Is(err, store.ErrExists) && m.Public:
			return nil, errorf(codes.AlreadyExists, "a public model with id %q is already loaded (public models share one namespace); choose another id", id)
		case errors.Is(err, store.ErrExists):
			return nil, errorf(codes.AlreadyExists, "you already have a model with id %q loaded; delete it first or choose another id", id)
		default:
			return nil, modelRoomStatus(err)
		}
	}
	s.log.Info("model loaded", "model_id", id, "owner", subject, "public", m.Public, "saved", m.Saved, "bytes", m.Size, "sha256", fmt.Sprintf("%x", hash), "inputs", len(sess.Inputs()), "outputs", len(sess.Outputs()))
	return &UploadResult{ID: id, Hash: hash, Inputs: sess.Inputs(), Outputs: sess.Outputs()}, nil
}

// ModelRef names the model to run: by ID, or, when ID is empty, by the
// SHA-256 of its bytes (the caller's own model first, else a public one).
type ModelRef struct {
	// ID is the model's id.
	ID string
	// Hash is the model's SHA-256, used when ID is empty.
	Hash []byte
}

// ParseModelHash reads a model hash given as text (64 hex digits).
func ParseModelHash(text string) ([]byte, error) {
	h, err := hex.DecodeString(text)
	if err != nil || len(h) != sha256.Size {
		return nil, errorf(codes.InvalidArgument, "model_hash must be the model's SHA-256 as 64 hex digits; got %d characters that are not", len(text))
	}
	return h, nil
}

// Inputs collects a run's input tensors for the model being run. Each
// tensor's type and shape are checked against the model's before memory
// is taken for it, within max_input_bytes and max_inflight_input_bytes.
type Inputs struct{ a *assembler }

// Specs returns the model's inputs, in order.
func (in *Inputs) Specs() []engine.TensorSpec { return in.a.specs }

// Add takes the whole of one input tensor: the model's input named name,
// or, when name is empty, the one at position pos. data is used as is
// (not copied) until the run ends, then zeroed.
func (in *Inputs) Add(pos int, name string, dtype tensor.DType, shape []int64, data []byte) error {
	if name != "" {
		pos = -1
		for i, s := range in.a.specs {
			if s.Name == name {
				pos = i
			}
		}
		if pos < 0 {
			return errorf(codes.InvalidArgument, "unknown input name %q; the model's inputs are %s", name, describeSpecs(in.a.specs))
		}
	} else if pos < 0 || pos >= len(in.a.specs) {
		return errorf(codes.InvalidArgument, "input %d is out of range: the model has %d input(s): %s", pos, len(in.a.specs), describeSpecs(in.a.specs))
	}
	if in.a.parts[pos] != nil {
		return errorf(codes.InvalidArgument, "input %q is given twice", in.a.specs[pos].Name)
	}
	return in.a.addPart(pos, dtype, shape, data)
}

// RunResult holds a run's outputs.
type RunResult struct {
	// ModelID is the id of the model that ran.
	ModelID string
	// ModelHash is the SHA-256 of the model's bytes as uploaded.
	ModelHash [32]byte
	// Outputs are the model's outputs, in order.
	Outputs []tensor.Tensor
	// Elapsed is the inference's time inside the engine.
	Elapsed time.Duration
}

// Wipe zeroes the outputs once they are sent and gives their buffers back
// for later runs. Call it once; nothing may read the outputs after it.
func (r *RunResult) Wipe() {
	for _, t := range r.Outputs {
		bufpool.Put(t.Data)
	}
}

// Run finds the model, takes its inputs through fill, waits for a fair run
// slot and runs it within max_run_time; the outputs are within
// max_reply_bytes. Wipe the result once it is sent.
func (c *Core) Run(ctx context.Context, subject string, ref ModelRef, fill func(*Inputs) error) (*RunResult, error) {
	return c.s.run(ctx, subject, ref, nil, fill)
}

// acquireRef finds the model ref names that subject may run.
func (s *Server) acquireRef(ctx context.Context, subject string, ref ModelRef) (*store.Model, func(), error) {
	if ref.ID != "" {
		return s.acquireModel(ctx, subject, ref.ID)
	}
	if len(ref.Hash) != sha256.Size {
		return nil, nil, errorf(codes.InvalidArgument, "name the model to run: by id, or by its SHA-256 hash")
	}
	var want [32]byte
	copy(want[:], ref.Hash)
	id, found := "", false
	for _, info := range s.models.List() {
		if info.Hash != want || (info.Owner != subject && !info.Public) {
			continue
		}
		if !found || info.Owner == subject {
			id, found = info.ID, true
		}
	}
	if !found {
		return nil, nil, errorf(codes.NotFound, "no model with SHA-256 %x that you may run is loaded", want)
	}
	m, release, err := s.acquireModel(ctx, subject, id)
	if err != nil {
		return nil, nil, err
	}
	if m.Hash != want { // replaced between the lookup and now
		release()
		return nil, nil, errorf(codes.NotFound, "no model with SHA-256 %x that you may run is loaded", want)
	}
	return m, release, nil
}

// run is Run, feeding h (if not nil) with the input bytes as they arrive.
func (s *Server) run(ctx context.Context, subject string, ref ModelRef, h hash.Hash, fill func(*Inputs) error) (*RunResult, error) {
	// Another subject's private model is not found, exactly like a model
	// that does not exist: its existence is not the caller's to learn.
	m, release, err := s.acquireRef(ctx, subject, ref)
	if err != nil {
		return nil, err
	}
	defer release()
	asm := newAssembler(m.Session.Inputs(), int64(s.cfg.MaxInputBytes), &s.inflight, h)
	defer asm.release()
	if err := fill(&Inputs{a: asm}); err != nil {
		return nil, err
	}
	inputs, err := asm.finish()
	if err != nil {
		return nil, err
	}
	// Checked before waiting for an inference slot, so that a bad request
	// never holds or waits for one (Run checks again, cheaply).
	if err := m.Session.CheckInputs(inputs); err != nil {
		return nil, errorf(codes.InvalidArgument, "%v", err)
	}
	freeSlot, err := s.runSlot(ctx, subject)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if s.cfg.MaxRunTime > 0 {
		runCtx, cancel = context.WithTimeout(ctx, time.Duration(s.cfg.MaxRunTime))
	}
	start := time.Now()
	outputs, err := m.Session.Run(runCtx, inputs, engine.WithMaxOutputBytes(int64(s.cfg.MaxReplyBytes)), engine.WithPooledOutputs())
	elapsed := time.Since(start)
	freeSlot()
	timedOut := runCtx.Err() != nil && ctx.Err() == nil
	cancel()
	asm.release() // the inputs are not needed any more
	if err != nil {
		if timedOut {
			s.log.Warn("run stopped at the server's time limit", "model_id", m.ID, "max_run_time", s.cfg.MaxRunTime.String())
			return nil, errorf(codes.DeadlineExceeded, "the run took longer than the server's limit of %s (max_run_time) and was stopped", s.cfg.MaxRunTime)
		}
		return nil, s.runStatus(ctx, m.ID, err)
	}
	r := &RunResult{ModelID: m.ID, ModelHash: m.Hash, Outputs: outputs, Elapsed: elapsed}
	var total int64
	for _, t := range outputs {
		total += int64(len(t.Data))
	}
	if total > int64(s.cfg.MaxReplyBytes) {
		r.Wipe()
		return nil, errorf(codes.ResourceExhausted, "the model's outputs exceed the server's reply limit of %d bytes (max_reply_bytes)", s.cfg.MaxReplyBytes)
	}
	return r, nil
}

// Delete removes subject's model id (and its sealed copy). Only the
// caller's own models are found: another subject's model, public or not,
// is not found, like one that does not exist.
func (c *Core) Delete(subject, id string) error {
	s := c.s
	if id == "" {
		return errorf(codes.InvalidArgument, "model_id is empty; name the model to delete")
	}
	saved := false
	if s.cluster != nil {
		s.clusterRefresh(subject, id)
	}
	err := s.models.DeleteIf(subject, id, func(m *store.Model) error {
		saved = m.Saved
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return errorf(codes.NotFound, "you have no model with id %q loaded", id)
	}
	if err != nil {
		return err
	}
	if saved {
		if err := s.sealer.Remove(subject, id); err != nil {
			s.log.Error("model deleted, but its sealed copy could not be removed", "model_id", id, "err", err)
			return errorf(codes.Internal, "model %q was unloaded, but its saved copy could not be removed: %v", id, err)
		}
	}
	s.log.Info("model deleted", "model_id", id, "saved", saved)
	return nil
}

// httpStatuses maps gRPC codes to the HTTP statuses of HTTP front ends.
var httpStatuses = map[codes.Code]int{
	codes.OK:                 http.StatusOK,
	codes.InvalidArgument:    http.StatusBadRequest,
	codes.OutOfRange:         http.StatusBadRequest,
	codes.FailedPrecondition: http.StatusPreconditionFailed,
	codes.Unauthenticated:    http.StatusUnauthorized,
	codes.PermissionDenied:   http.StatusForbidden,
	codes.NotFound:           http.StatusNotFound,
	codes.AlreadyExists:      http.StatusConflict,
	codes.Aborted:            http.StatusConflict,
	codes.ResourceExhausted:  http.StatusTooManyRequests,
	codes.Unavailable:        http.StatusServiceUnavailable,
	codes.DeadlineExceeded:   http.StatusGatewayTimeout,
	codes.Canceled:           499, // the client went away; nobody reads it
	codes.Unimplemented:      http.StatusNotImplemented,
}

// HTTPStatus maps an error from Core (a gRPC status, with the code the
// gRPC front end would send) to an HTTP status and its message. Limits on
// sizes (max_model_bytes, max_input_bytes, max_reply_bytes) are 413; other
// RESOURCE_EXHAUSTED (busy, rate limits, memory budget) is 429. An error
// that is no status is 500 with a generic message.
func HTTPStatus(err error) (int, string) {
	st, ok := status.FromError(err)
	if !ok {
		return http.StatusInternalServerError, "internal error; the server logged it"
	}
	code, ok := httpStatuses[st.Code()]
	if !ok {
		code = http.StatusInternalServerError
	}
	if st.Code() == codes.ResourceExhausted && tooLarge(st.Message()) {
		code = http.StatusRequestEntityTooLarge
	}
	return code, st.Message()
}

// tooLarge says whether a RESOURCE_EXHAUSTED message is about a request's
// or reply's size limit rather than about the server being busy.
func tooLarge(msg string) bool {
	for _, k := range []string{"(max_model_bytes)", "(max_input_bytes)", "(max_reply_bytes)", "max_reply_bytes,", "the request body is over"} {
		if strings.Contains(msg, k) {
			return true
		}
	}
	return false
}
