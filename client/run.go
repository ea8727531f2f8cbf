package client

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/blindfold-ai/blindfold/api/prooffiles"
	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/internal/wire"
	"github.com/blindfold-ai/blindfold/proof"
	"github.com/blindfold-ai/blindfold/tensor"
)

// RunResult is the outcome of Run.
type RunResult struct {
	// ModelID is the model that ran.
	ModelID string
	// Outputs are the model's outputs, with their names, types and shapes.
	Outputs []tensor.Tensor
	// InferenceTime is the time the server reports it spent in the engine
	// (a claim of the server; not covered by evidence unless signed).
	InferenceTime time.Duration
	// InputHash is the SHA-256 of the inputs sent, computed by the client
	// for a signed run (the server signed the same value; checked). It is
	// nil for an unsigned run, which has nothing to check it against.
	InputHash []byte
	// IssuedAt is the payload's timestamp, from the server host's clock
	// (untrusted; see package proof).
	IssuedAt time.Time
	// Signed is true when the reply was signed and verified.
	Signed bool
	// Payload is the decoded reply payload.
	Payload *securedexchange.Payload
	// Reply is the raw reply: payload bytes and signature.
	Reply *securedexchange.RunModelReply

	certDER  []byte
	evidence *attest.Evidence
}

// Output returns the output named name.
func (r *RunResult) Output(name string) (tensor.Tensor, bool) {
	for _, t := range r.Outputs {
		if t.Name == name {
			return t, true
		}
	}
	return tensor.Tensor{}, false
}

// Proof returns the reply as a proof file, or nil when it was not signed.
// In hardware mode the proof carries the evidence verified at Connect; in
// simulation, the attested certificate as its only evidence (see package
// proof).
func (r *RunResult) Proof() *prooffiles.ResponseProof {
	if !r.Signed {
		return nil
	}
	if r.evidence != nil {
		return proof.FromEvidence(r.evidence, r.certDER, r.Reply.GetPayload(), r.Reply.GetSignature())
	}
	return proof.NewSimulation(r.certDER, r.Reply.GetPayload(), r.Reply.GetSignature())
}

// SaveProof writes the reply's proof file at path. It fails when the reply
// was not signed.
func (r *RunResult) SaveProof(path string) error {
	p := r.Proof()
	if p == nil {
		return errors.New("client: the run reply is not signed; pass Sign() to get a proof")
	}
	return proof.WriteFile(path, p)
}

// Run runs model modelID on inputs. Inputs are matched by position (index =
// position in the slice), and also by name with ByName. Each tensor is sent
// in pieces of at most DefaultChunkSize (WithChunkSize). With Sign, the
// signature, the signed input hash (against the client's own hash of what it sent) and
// the model id are verified before return.
func (c *Client) Run(ctx context.Context, modelID string, inputs []tensor.Tensor, opts ...RunOption) (*RunResult, error) {
	cfg := runConfig{chunk: DefaultChunkSize}
	for _, o := range opts {
		o.applyRun(&cfg)
	}
	if modelID == "" {
		return nil, errors.New("client: Run needs a model id")
	}
	if len(inputs) == 0 {
		return nil, errors.New("client: Run needs at least one input tensor")
	}
	infos := make([]*securedexchange.TensorInfo, len(inputs))
	for i, t := range inputs {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("client: input %d: %w", i, err)
		}
		if cfg.byName && t.Name == "" {
			return nil, fmt.Errorf("client: input %d has no name, but inputs are sent by name", i)
		}
		dims, err := toDims(t.Shape, false)
		if err != nil {
			return nil, fmt.Errorf("client: input %d (%q): %w", i, t.Name, err)
		}
		infos[i] = &securedexchange.TensorInfo{Dims: dims, DatumType: securedexchange.DatumTypeEnum(t.DType), Index: int32(i)}
		if cfg.byName {
			infos[i].IndexName = t.Name
		}
	}

	callCtx := ctx
	ctx, err := withRequestNonce(ctx, cfg.nonce)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.exchange.RunModel(ctx)
	if err != nil {
		return nil, fmt.Errorf("client: running model %q: %w", modelID, err)
	}
	var hasher *proof.InputHasher
	if cfg.sign {
		hasher = proof.NewInputHasher()
	}
	send := func(info *securedexchange.TensorInfo, data []byte) error {
		if hasher != nil {
			hasher.Write(data)
		}
		// Encoded by hand, as the generated code would, with the chunk's
		// bytes referenced rather than copied.
		e, err := wire.RunRequest(&securedexchange.RunModelRequest{
			InputTensors: []*securedexchange.TensorData{{Info: info, BytesData: data}},
			Sign:         cfg.sign,
			ClientInfo:   clientInfo(),
			ModelId:      modelID,
		})
		if err != nil {
			return err
		}
		err = stream.SendMsg(e)
		if err == io.EOF {
			// The server ended the stream; its status says why.
			_, err = stream.CloseAndRecv()
		}
		return err
	}
	for i, t := range inputs {
		if len(t.Data) == 0 {
			if err := send(infos[i], nil); err != nil {
				return nil, fmt.Errorf("client: running model %q: %w", modelID, err)
			}
			continue
		}
		for off := 0; off < len(t.Data); off += cfg.chunk {
			end := min(off+cfg.chunk, len(t.Data))
			if err := send(infos[i], t.Data[off:end]); err != nil {
				return nil, fmt.Errorf("client: running model %q: %w", modelID, err)
			}
		}
	}
	reply, err := stream.CloseAndRecv()
	if err != nil {
		return nil, fmt.Errorf("client: running model %q: %w", modelID, err)
	}
	res := &RunResult{ModelID: modelID, Reply: reply, certDER: c.certDER, evidence: c.evidence()}
	if hasher != nil {
		res.InputHash = hasher.Sum()
	}
	if cfg.sign {
		v, err := proof.VerifySigned(c.signingKey, reply.GetPayload(), reply.GetSignature(), proof.VerifyOptions{
			InputHash:    res.InputHash,
			ModelID:      modelID,
			RequestNonce: cfg.nonce,
		})
		if err != nil {
			return nil, fmt.Errorf("%w: run of model %q: %w", ErrVerification, modelID, err)
		}
		res.Signed = true
		res.Payload = v.Payload
	} else {
		p, err := proof.DecodePayload(reply.GetPayload())
		if err != nil {
			return nil, fmt.Errorf("client: run of model %q: %w", modelID, err)
		}
		res.Payload = p
	}
	rp := res.Payload.GetRunModelPayload()
	if rp == nil {
		return nil, fmt.Errorf("client: run of model %q: the reply carries a send_model payload, not a run payload", modelID)
	}
	if id := rp.GetModelId(); id != "" && id != modelID {
		return nil, fmt.Errorf("%w: the server ran model %q, not %q", ErrVerification, id, modelID)
	}
	if ts := res.Payload.GetHeader().GetIssuedAt(); ts != nil {
		res.IssuedAt = ts.AsTime()
	}
	res.InferenceTime = time.Duration(rp.GetInferenceTimeNs())
	if res.InferenceTime == 0 {
		res.InferenceTime = time.Duration(rp.GetInferenceTime()) * time.Millisecond
	}
	res.Outputs, err = DecodeTensors(rp.GetOutputTensors())
	if err != nil {
		return nil, fmt.Errorf("client: run of model %q: %w", modelID, err)
	}
	if res.Signed {
		res.evidence = c.servingEvidence(callCtx, rp.GetReceipt())
	}
	return res, nil
}

// withRequestNonce adds a request nonce to ctx's outgoing metadata.
func withRequestNonce(ctx context.Context, nonce []byte) (context.Context, error) {
	if nonce == nil {
		return ctx, nil
	}
	if err := attest.CheckNonce(nonce); err != nil {
		return nil, fmt.Errorf("client: request nonce: %w", err)
	}
	return metadata.AppendToOutgoingContext(ctx, wire.NonceMetadata, hex.EncodeToString(nonce)), nil
}

// DecodeTensors converts wire tensors to tensors, checking their element
// types and that each carries exactly the bytes its shape needs. A tensor's
// name is its index_name.
func DecodeTensors(tds []*securedexchange.TensorData) ([]tensor.Tensor, error) {
	out := make([]tensor.Tensor, len(tds))
	for i, td := range tds {
		info := td.GetInfo()
		dt := tensor.DType(info.GetDatumType())
		if !dt.Valid() {
			return nil, fmt.Errorf("output %d (%q): unknown element type %d", i, info.GetIndexName(), int32(info.GetDatumType()))
		}
		shape := make([]int64, len(info.GetDims()))
		for j, d := range info.GetDims() {
			if d < 0 {
				return nil, fmt.Errorf("output %d (%q): dimension %d is negative (%d)", i, info.GetIndexName(), j, d)
			}
			shape[j] = int64(d)
		}
		data := td.GetBytesData()
		if data == nil {
			data = []byte{}
		}
		t := tensor.Tensor{Name: info.GetIndexName(), DType: dt, Shape: shape, Data: data}
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("output %d: %w", i, err)
		}
		out[i] = t
	}
	return out, nil
}
