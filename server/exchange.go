package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/engine"
	"github.com/blindfold-ai/blindfold/internal/wire"
	"github.com/blindfold-ai/blindfold/store"
	"github.com/blindfold-ai/blindfold/tensor"
)

// MaxModelIDBytes is the longest model id accepted.
const MaxModelIDBytes = 256

// exchangeService implements securedexchange.Exchange on the attested port.
type exchangeService struct {
	securedexchange.UnimplementedExchangeServer
	s *Server
}

// recvErr maps an error from a stream's Recv to a status.
func recvErr(err error) error {
	if st := contextStatus(err); st != nil {
		return st
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return errorf(codes.Internal, "receiving the stream: %v", err)
}

// modelID picks the id of an upload (model_id, else model_name, else a new
// UUIDv4) and checks it (see checkModelID).
func modelID(req *securedexchange.SendModelRequest) (string, error) {
	id := req.GetModelId()
	if id == "" {
		id = req.GetModelName()
	}
	if id == "" {
		return uuid.NewString(), nil
	}
	if err := checkModelID(id); err != nil {
		return "", err
	}
	return id, nil
}

// checkModelID accepts 1 to MaxModelIDBytes bytes of UTF-8 text made of
// printable characters (letters, marks, numbers, punctuation, symbols and
// the ASCII space) that neither starts nor ends with a space. Control,
// format (zero-width, bidirectional), line and paragraph separator and
// other space characters are refused: an id must read the same wherever it
// is shown.
func checkModelID(id string) error {
	switch {
	case id == "":
		return errorf(codes.InvalidArgument, "model id is empty")
	case len(id) > MaxModelIDBytes:
		return errorf(codes.InvalidArgument, "model id is %d bytes long; at most %d are allowed", len(id), MaxModelIDBytes)
	case !utf8.ValidString(id):
		return errorf(codes.InvalidArgument, "model id is not valid UTF-8")
	case id[0] == ' ' || id[len(id)-1] == ' ':
		return errorf(codes.InvalidArgument, "model id %q starts or ends with a space", id)
	}
	for _, r := range id {
		if !unicode.IsPrint(r) {
			return errorf(codes.InvalidArgument, "model id %q holds the character U+%04X, which is not printable text (control, format, zero-width, bidirectional and separator characters are refused)", id, r)
		}
	}
	return nil
}

// checkStoredModelID is the check that sealed models saved before
// checkModelID's stricter rules passed: they are loaded still (with a
// warning), since they were accepted then.
func checkStoredModelID(id string) error {
	if id == "" || len(id) > MaxModelIDBytes || !utf8.ValidString(id) {
		return errors.New("not a valid model id")
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return errors.New("the model id holds a control character")
		}
	}
	return nil
}

func (e *exchangeService) SendModel(stream securedexchange.Exchange_SendModelServer) error {
	s := e.s
	in := newProgressReader(stream.Context(), stream.Recv, time.Duration(s.cfg.StreamProgressTimeout), "upload")
	defer in.stop()
	first, err := in.next()
	if err == io.EOF {
		return errorf(codes.InvalidArgument, "empty upload: the stream ended before any chunk arrived")
	}
	if err != nil {
		return recvErr(err)
	}
	owner, done, err := s.authorize(stream.Context(), first.GetJwt())
	if err != nil {
		return err
	}
	defer done()
	id, err := modelID(first)
	if err != nil {
		return err
	}
	// The id is this upload's until it ends: nobody else can upload, run or
	// delete under it meanwhile, so the sealed copy below can be written
	// before the model becomes visible.
	if s.cluster != nil {
		s.clusterRefresh(owner, id)
	}
	if err := s.models.Claim(owner, id); err != nil {
		return errorf(codes.AlreadyExists, "you already have a model with id %q loaded or being uploaded; delete it first or choose another id", id)
	}
	defer s.models.Unclaim(owner, id)
	res := s.models.ReserveFor(owner)
	defer res.Release()
	up, err := newUpload(first, id, int64(s.cfg.MaxModelBytes), res)
	if err != nil {
		return err
	}
	defer up.wipe()
	for {
		msg, err := in.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return recvErr(err)
		}
		if err := up.add(msg); err != nil {
			return err
		}
	}
	buf, err := up.finish()
	if err != nil {
		return err
	}
	hash := sha256.Sum256(buf)
	sess, err := s.loadModel(stream.Context(), id, buf)
	if err != nil {
		return err
	}
	if err := checkDeclaredSpecs("input", first.GetTensorInputs(), sess.Inputs()); err != nil {
		sess.Close()
		return err
	}
	if err := checkDeclaredSpecs("output", first.GetTensorOutputs(), sess.Outputs()); err != nil {
		sess.Close()
		return err
	}
	m := &store.Model{ID: id, Hash: hash, Size: int64(len(buf)), Session: sess, Loaded: time.Now(), Owner: owner, Public: first.GetPublic(),
		Inputs: sess.Inputs(), Outputs: sess.Outputs()}
	if first.GetSaveModel() || s.cluster != nil { // a cluster keeps every model in its shared store
		if err := s.seal(m, buf); err != nil {
			sess.Close()
			if errors.Is(err, store.ErrExists) {
				return errorf(codes.AlreadyExists, "you already have a model with id %q (uploaded through another replica); delete it first or choose another id", id)
			}
			s.log.Error("cannot save a sealed copy; upload refused", "model_id", id, "err", err)
			return errorf(codes.Unavailable, "the server could not save the model (save_model): %v; nothing was kept", err)
		}
		m.Saved = true
	}
	up.wipe() // the engine holds the model now
	if err := s.models.AddIf(m, res, stream.Context().Err); err != nil {
		sess.Close()
		if m.Saved {
			if rerr := s.sealer.Remove(owner, id); rerr != nil {
				s.log.Error("upload not kept, and its sealed copy could not be removed", "model_id", id, "err", rerr)
			}
		}
		if st := contextStatus(err); st != nil {
			return st
		}
		switch {
		case errors.Is(err, store.ErrExists) && m.Public:
			return errorf(codes.AlreadyExists, "a public model with id %q is already loaded (public models share one namespace); choose another id", id)
		case errors.Is(err, store.ErrExists):
			return errorf(codes.AlreadyExists, "you already have a model with id %q loaded; delete it first or choose another id", id)
		default:
			return modelRoomStatus(err)
		}
	}
	s.log.Info("model loaded", "model_id", id, "owner", owner, "public", m.Public, "saved", m.Saved, "bytes", m.Size, "sha256", fmt.Sprintf("%x", hash), "inputs", len(sess.Inputs()), "outputs", len(sess.Outputs()))
	payload := &securedexchange.Payload{
		Header: &securedexchange.PayloadHeader{IssuedAt: timestamppb.Now()},
		Payload: &securedexchange.Payload_SendModelPayload{SendModelPayload: &securedexchange.SendModelPayload{
			ModelHash:     hash[:],
			TensorInputs:  specInfos(sess.Inputs()),
			TensorOutputs: specInfos(sess.Outputs()),
			ModelId:       id,
		}},
	}
	reply, err := s.signedReply(payload, first.GetSign())
	if err != nil {
		return err
	}
	return stream.SendAndClose(&securedexchange.SendModelReply{Payload: reply.payload, Signature: reply.signature})
}

func dtypeNames() string {
	var out string
	for i, d := range tensor.DTypes() {
		if i > 0 {
			out += ", "
		}
		out += d.String()
	}
	return out
}

// specInfos describes a model's tensors in wire form (dynamic dimensions
// are -1).
func specInfos(specs []engine.TensorSpec) []*securedexchange.TensorInfo {
	out := make([]*securedexchange.TensorInfo, len(specs))
	for i, sp := range specs {
		dims := make([]int32, len(sp.Shape))
		for j, d := range sp.Shape {
			if d < 0 || d > math.MaxInt32 {
				d = -1
			}
			dims[j] = int32(d)
		}
		out[i] = &securedexchange.TensorInfo{Dims: dims, DatumType: securedexchange.DatumTypeEnum(sp.DType), Index: int32(i), IndexName: sp.Name}
	}
	return out
}

// checkDeclaredSpecs compares the tensor specs a client declared at upload
// with the model's own. Declaring none is fine; a declared dimension of 0 or
// less matches anything.
func checkDeclaredSpecs(kind string, given []*securedexchange.TensorInfo, model []engine.TensorSpec) error {
	if len(given) == 0 {
		return nil
	}
	if len(given) != len(model) {
		return errorf(codes.InvalidArgument, "the upload declares %d %s(s), the model has %d: %s", len(given), kind, len(model), describeSpecs(model))
	}
	for i, g := range given {
		pos := i
		if g.GetIndexName() != "" {
			pos = -1
			for j, m := range model {
				if m.Name == g.IndexName {
					pos = j
				}
			}
			if pos < 0 {
				return errorf(codes.InvalidArgument, "the upload declares %s %q, which the model lacks; the model's %ss are %s", kind, g.IndexName, kind, describeSpecs(model))
			}
		} else if idx := int(g.GetIndex()); idx >= 0 && idx < len(model) {
			pos = idx
		}
		m := model[pos]
		if tensor.DType(g.GetDatumType()) != m.DType {
			return errorf(codes.InvalidArgument, "%s %q: the upload declares %s, the model has %s", kind, m.Name, tensor.DType(g.GetDatumType()), m.DType)
		}
		if len(g.GetDims()) == 0 {
			continue
		}
		if len(g.Dims) != len(m.Shape) {
			return errorf(codes.InvalidArgument, "%s %q: the upload declares rank %d, the model has %s", kind, m.Name, len(g.Dims), describeSpec(m))
		}
		for j, d := range g.Dims {
			if d > 0 && m.Shape[j] >= 0 && int64(d) != m.Shape[j] {
				return errorf(codes.InvalidArgument, "%s %q: the upload declares dimension %d = %d, the model has %s", kind, m.Name, j, d, describeSpec(m))
			}
		}
	}
	return nil
}

type reply struct{ payload, signature []byte }

// signedReply serializes payload and, if asked, signs the exact bytes.
func (s *Server) signedReply(p *securedexchange.Payload, sign bool) (reply, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(p)
	if err != nil {
		return reply{}, errorf(codes.Internal, "encoding the reply: %v", err)
	}
	if int64(len(b)) > int64(s.cfg.MaxReplyBytes)+1<<20 {
		return reply{}, errorf(codes.ResourceExhausted, "the reply is %d bytes, over the server's limit of %d bytes (max_reply_bytes)", len(b), s.cfg.MaxReplyBytes)
	}
	r := reply{payload: b}
	if sign {
		r.signature = s.id.Sign(b)
	}
	return r, nil
}

func (e *exchangeService) RunModel(stream securedexchange.Exchange_RunModelServer) error {
	s := e.s
	subject, done, err := s.authorize(stream.Context(), "")
	if err != nil {
		return err
	}
	defer done()
	in := newProgressReader(stream.Context(), stream.Recv, time.Duration(s.cfg.StreamProgressTimeout), "request")
	defer in.stop()
	first, err := in.next()
	if err == io.EOF {
		return errorf(codes.InvalidArgument, "empty request: the stream ended before any chunk arrived")
	}
	if err != nil {
		return recvErr(err)
	}
	id := first.GetModelId()
	if id == "" {
		return errorf(codes.InvalidArgument, "model_id is empty; name the model to run")
	}
	// Another subject's private model is not found, exactly like a model
	// that does not exist: its existence is not the caller's to learn.
	m, release, err := s.acquireModel(stream.Context(), subject, id)
	if err != nil {
		return err
	}
	defer release()
	sign := first.GetSign()
	var h = sha256.New()
	if !sign {
		h = nil
	}
	asm := newAssembler(m.Session.Inputs(), int64(s.cfg.MaxInputBytes), &s.inflight, h)
	defer asm.release()
	for msg := first; ; {
		if mid := msg.GetModelId(); mid != "" && mid != id {
			return errorf(codes.InvalidArgument, "a later chunk names model id %q, the first named %q", mid, id)
		}
		if len(msg.GetInputTensors()) == 0 {
			if err := asm.empty(); err != nil {
				return err
			}
		}
		for _, td := range msg.GetInputTensors() {
			if err := asm.add(td); err != nil {
				return err
			}
		}
		msg, err = in.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return recvErr(err)
		}
	}
	inputs, err := asm.finish()
	if err != nil {
		return err
	}
	// Checked before waiting for an inference slot, so that a bad request
	// never holds or waits for one (Run checks again, cheaply).
	if err := m.Session.CheckInputs(inputs); err != nil {
		return errorf(codes.InvalidArgument, "%v", err)
	}
	ctx := stream.Context()
	freeSlot, err := s.runSlot(ctx, subject)
	if err != nil {
		return err
	}
	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if s.cfg.MaxRunTime > 0 {
		runCtx, cancel = context.WithTimeout(ctx, time.Duration(s.cfg.MaxRunTime))
	}
	start := time.Now()
	outputs, err := m.Session.Run(runCtx, inputs, engine.WithMaxOutputBytes(int64(s.cfg.MaxReplyBytes)))
	elapsed := time.Since(start)
	freeSlot()
	timedOut := runCtx.Err() != nil && ctx.Err() == nil
	cancel()
	asm.release() // the inputs are not needed any more
	if err != nil {
		if timedOut {
			s.log.Warn("run stopped at the server's time limit", "model_id", id, "max_run_time", s.cfg.MaxRunTime.String())
			return errorf(codes.DeadlineExceeded, "the run took longer than the server's limit of %s (max_run_time) and was stopped", s.cfg.MaxRunTime)
		}
		return s.runStatus(ctx, id, err)
	}
	sent := false
	defer func() {
		if !sent { // once sent, gRPC zeroes them when it has written them
			for _, t := range outputs {
				clear(t.Data)
			}
		}
	}()
	out, err := s.outputTensors(outputs)
	if err != nil {
		return err
	}
	f := wire.RunPayload{
		Header:          &securedexchange.PayloadHeader{IssuedAt: timestamppb.Now()},
		ModelID:         id,
		InferenceTime:   uint64(elapsed.Milliseconds()),
		InferenceTimeNs: uint64(elapsed.Nanoseconds()),
	}
	if h != nil {
		f.InputHash = h.Sum(nil)
	}
	var signer func([]byte) []byte
	if sign {
		signer = s.id.Sign
	}
	// The reply references the outputs' buffers; gRPC zeroes them once it
	// has written them.
	reply, size, err := wire.RunReply(f, out, signer)
	if err != nil {
		return errorf(codes.Internal, "encoding the reply: %v", err)
	}
	if int64(size) > int64(s.cfg.MaxReplyBytes)+1<<20 {
		return errorf(codes.ResourceExhausted, "the reply is %d bytes, over the server's limit of %d bytes (max_reply_bytes)", size, s.cfg.MaxReplyBytes)
	}
	sent = true
	return stream.SendMsg(reply)
}

// outputTensors puts outputs in wire form, checking the reply limit.
func (s *Server) outputTensors(outputs []tensor.Tensor) ([]*securedexchange.TensorData, error) {
	var total int64
	out := make([]*securedexchange.TensorData, len(outputs))
	for i, t := range outputs {
		total += int64(len(t.Data))
		if total > int64(s.cfg.MaxReplyBytes) {
			return nil, errorf(codes.ResourceExhausted, "the model's outputs exceed the server's reply limit of %d bytes (max_reply_bytes)", s.cfg.MaxReplyBytes)
		}
		dims := make([]int32, len(t.Shape))
		for j, d := range t.Shape {
			if d > math.MaxInt32 {
				return nil, errorf(codes.OutOfRange, "output %q has dimension %d = %d, more than the protocol's int32 dims can carry", t.Name, j, d)
			}
			dims[j] = int32(d)
		}
		out[i] = &securedexchange.TensorData{
			Info:      &securedexchange.TensorInfo{Dims: dims, DatumType: securedexchange.DatumTypeEnum(t.DType), Index: int32(i), IndexName: t.Name},
			BytesData: t.Data,
		}
	}
	return out, nil
}

func (e *exchangeService) DeleteModel(ctx context.Context, req *securedexchange.DeleteModelRequest) (*securedexchange.DeleteModelReply, error) {
	subject, done, err := e.s.authorize(ctx, "")
	if err != nil {
		return nil, err
	}
	defer done()
	id := req.GetModelId()
	if id == "" {
		return nil, errorf(codes.InvalidArgument, "model_id is empty; name the model to delete")
	}
	// Only the caller's own models are found: another subject's model,
	// public or not, is not found, like one that does not exist.
	saved := false
	if e.s.cluster != nil {
		e.s.clusterRefresh(subject, id)
	}
	err = e.s.models.DeleteIf(subject, id, func(m *store.Model) error {
		saved = m.Saved
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(codes.NotFound, "you have no model with id %q loaded", id)
	}
	if err != nil {
		return nil, err
	}
	if saved {
		if err := e.s.sealer.Remove(subject, id); err != nil {
			e.s.log.Error("model deleted, but its sealed copy could not be removed", "model_id", id, "err", err)
			return nil, errorf(codes.Internal, "model %q was unloaded, but its saved copy could not be removed: %v", id, err)
		}
	}
	e.s.log.Info("model deleted", "model_id", id, "saved", saved)
	return &securedexchange.DeleteModelReply{}, nil
}
