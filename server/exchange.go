package server

import (
	"context"
	"crypto/sha256"
	"errors"
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
	"github.com/blindfold-ai/blindfold/internal/bufpool"
	"github.com/blindfold-ai/blindfold/internal/wire"
	"github.com/blindfold-ai/blindfold/proof"
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
	nonce, err := requestNonce(stream.Context())
	if err != nil {
		return err
	}
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
	var rc *securedexchange.Receipt
	if first.GetSign() { // before the upload, so that a failure keeps nothing
		if rc, err = s.receipt(stream.Context(), nonce); err != nil {
			return err
		}
	}
	id, err := modelID(first)
	if err != nil {
		return err
	}
	spec := UploadSpec{ID: id, Declared: first.GetLength(), Public: first.GetPublic(), Save: first.GetSaveModel(),
		check: func(inputs, outputs []engine.TensorSpec) error {
			if err := checkDeclaredSpecs("input", first.GetTensorInputs(), inputs); err != nil {
				return err
			}
			return checkDeclaredSpecs("output", first.GetTensorOutputs(), outputs)
		}}
	res, err := s.core.Upload(stream.Context(), owner, spec, func(sink *ModelSink) error {
		if _, err := sink.Write(first.GetData()); err != nil {
			return err
		}
		empty := 0
		for {
			msg, err := in.next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return recvErr(err)
			}
			if mid := msg.GetModelId(); mid != "" && mid != id {
				return errorf(codes.InvalidArgument, "a later chunk names model id %q, but this upload's model id is %q (%s)", mid, id, idSource(first))
			}
			if len(msg.GetData()) == 0 {
				if empty++; empty > maxEmptyChunks {
					return errorf(codes.InvalidArgument, "more than %d chunks without model bytes; every chunk after the first must carry some", maxEmptyChunks)
				}
			}
			if _, err := sink.Write(msg.GetData()); err != nil {
				return err
			}
		}
	})
	if err != nil {
		return err
	}
	sp := &securedexchange.SendModelPayload{
		ModelHash:     res.Hash[:],
		TensorInputs:  specInfos(res.Inputs),
		TensorOutputs: specInfos(res.Outputs),
		ModelId:       res.ID,
	}
	sp.Receipt = rc
	payload := &securedexchange.Payload{
		Header:  &securedexchange.PayloadHeader{IssuedAt: timestamppb.Now()},
		Payload: &securedexchange.Payload_SendModelPayload{SendModelPayload: sp},
	}
	reply, err := s.signedReply(payload, first.GetSign())
	if err != nil {
		return err
	}
	return stream.SendAndClose(&securedexchange.SendModelReply{Payload: reply.payload, Signature: reply.signature})
}

// idSource says where an upload's id came from, for messages.
func idSource(first *securedexchange.SendModelRequest) string {
	switch {
	case first.GetModelId() != "":
		return "the first chunk's model_id"
	case first.GetModelName() != "":
		return "the first chunk's model_name"
	default:
		return "made by the server, as the first chunk named none"
	}
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
	nonce, err := requestNonce(stream.Context())
	if err != nil {
		return err
	}
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
	sign := first.GetSign()
	var h = sha256.New()
	if !sign {
		h = nil
	}
	var rc *securedexchange.Receipt
	if sign { // before the run, so that a failure wastes none
		if rc, err = s.receipt(stream.Context(), nonce); err != nil {
			return err
		}
	}
	ctx := stream.Context()
	r, err := s.run(ctx, subject, ModelRef{ID: id}, h, func(inputs *Inputs) error {
		asm := inputs.a
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
				return nil
			}
			if err != nil {
				return recvErr(err)
			}
		}
	})
	if err != nil {
		return err
	}
	outputs, elapsed := r.Outputs, r.Elapsed
	sent := false
	defer func() {
		if !sent { // once sent, gRPC zeroes them when it has written them
			for _, t := range outputs {
				bufpool.Put(t.Data)
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
		rc.ModelHash = r.ModelHash[:]
		rc.OutputHash = proof.OutputHash(out)
		f.Receipt = rc
	}
	// Unsigned, the reply references the outputs' buffers; gRPC zeroes them
	// once it has written them.
	reply, size, err := wire.RunReply(f, out, signer)
	if err != nil {
		return errorf(codes.Internal, "encoding the reply: %v", err)
	}
	if int64(size) > int64(s.cfg.MaxReplyBytes)+1<<20 {
		return errorf(codes.ResourceExhausted, "the reply is %d bytes, over the server's limit of %d bytes (max_reply_bytes)", size, s.cfg.MaxReplyBytes)
	}
	sent = true
	if sign { // the payload holds the one copy of the outputs gRPC sends
		for _, t := range outputs {
			bufpool.Put(t.Data)
		}
	}
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
	if err := e.s.core.Delete(subject, req.GetModelId()); err != nil {
		return nil, err
	}
	return &securedexchange.DeleteModelReply{}, nil
}
