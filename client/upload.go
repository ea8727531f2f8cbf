package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"

	"github.com/blindfold-ai/blindfold/api/prooffiles"
	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/proof"
)

// UploadResult is the outcome of UploadModel.
type UploadResult struct {
	// ModelID is the id the server stored the model under.
	ModelID string
	// ModelHash is the model's SHA-256. It equals the server's model_hash
	// (checked); for a signed reply the signature vouches for it.
	ModelHash []byte
	// Inputs and Outputs are the model's tensors as the server reports them
	// (Blindfold servers; may be empty for others).
	Inputs, Outputs []TensorSpec
	// Signed is true when the reply was signed and verified.
	Signed bool
	// Payload is the decoded reply payload (nil when the server sent none).
	Payload *securedexchange.Payload
	// Reply is the raw reply: payload bytes and signature.
	Reply *securedexchange.SendModelReply

	certDER  []byte
	evidence *attest.Evidence
}

// Proof returns the reply as a proof file, or nil when it was not signed.
// In hardware mode the proof carries the evidence verified at Connect; in
// simulation, the attested certificate as its only evidence (see package
// proof).
func (r *UploadResult) Proof() *prooffiles.ResponseProof {
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
func (r *UploadResult) SaveProof(path string) error {
	p := r.Proof()
	if p == nil {
		return errors.New("client: the upload reply is not signed; pass Sign() to get a proof")
	}
	return proof.WriteFile(path, p)
}

// UploadModel sends an ONNX model in chunks (DefaultChunkSize unless
// WithChunkSize)
// and returns the id it is stored under. Each chunk carries the request's
// fields, as the protocol's reference client sends them. With Sign, the
// reply's signature, model hash and model id are verified before return.
func (c *Client) UploadModel(ctx context.Context, model []byte, opts ...UploadOption) (*UploadResult, error) {
	cfg := uploadConfig{chunk: DefaultChunkSize}
	for _, o := range opts {
		o.applyUpload(&cfg)
	}
	if len(model) == 0 {
		return nil, errors.New("client: the model is empty; nothing to upload")
	}
	inputs, err := specsToInfo(cfg.inputs)
	if err != nil {
		return nil, err
	}
	outputs, err := specsToInfo(cfg.outputs)
	if err != nil {
		return nil, err
	}
	want := cfg.id
	if want == "" {
		want = cfg.name
	}
	if want == "" {
		cfg.id = uuid.NewString()
		want = cfg.id
	}
	localHash := proof.ModelHash(model)

	callCtx := ctx
	ctx, err = withRequestNonce(ctx, cfg.nonce)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.exchange.SendModel(ctx)
	if err != nil {
		return nil, fmt.Errorf("client: uploading model %q: %w", want, err)
	}
	total := int64(len(model))
	for off := 0; off < len(model); off += cfg.chunk {
		end := min(off+cfg.chunk, len(model))
		req := &securedexchange.SendModelRequest{
			Data:          model[off:end],
			Length:        uint64(total),
			TensorInputs:  inputs,
			TensorOutputs: outputs,
			Sign:          cfg.sign,
			ClientInfo:    clientInfo(),
			ModelName:     cfg.name,
			SaveModel:     cfg.save,
			Public:        cfg.public,
			ModelId:       cfg.id,
		}
		if err := stream.Send(req); err != nil {
			if err == io.EOF {
				// The server ended the stream; its status says why.
				_, err = stream.CloseAndRecv()
			}
			return nil, fmt.Errorf("client: uploading model %q: %w", want, err)
		}
		if cfg.progress != nil {
			cfg.progress(int64(end), total)
		}
	}
	reply, err := stream.CloseAndRecv()
	if err != nil {
		return nil, fmt.Errorf("client: uploading model %q: %w", want, err)
	}
	res := &UploadResult{ModelID: want, ModelHash: localHash, Reply: reply, certDER: c.certDER, evidence: c.evidence()}
	if cfg.sign {
		v, err := proof.VerifySigned(c.signingKey, reply.GetPayload(), reply.GetSignature(), proof.VerifyOptions{
			ModelHash:    localHash,
			ModelID:      want,
			RequestNonce: cfg.nonce,
		})
		if err != nil {
			return nil, fmt.Errorf("%w: upload of model %q: %w", ErrVerification, want, err)
		}
		if v.Kind != proof.KindSendModel {
			return nil, fmt.Errorf("%w: upload of model %q: the signed payload is a %s payload", ErrVerification, want, v.Kind)
		}
		res.Signed = true
		res.Payload = v.Payload
		res.evidence = c.servingEvidence(callCtx, v.Payload.GetSendModelPayload().GetReceipt())
	} else if len(reply.GetPayload()) > 0 {
		p, err := proof.DecodePayload(reply.GetPayload())
		if err != nil {
			return nil, fmt.Errorf("client: upload of model %q: %w", want, err)
		}
		res.Payload = p
	}
	if sp := res.Payload.GetSendModelPayload(); sp != nil {
		if h := sp.GetModelHash(); len(h) > 0 && !bytes.Equal(h, localHash) {
			return nil, fmt.Errorf("%w: the server reports model hash %s, but the model sent hashes to %s", ErrVerification, hex.EncodeToString(h), hex.EncodeToString(localHash))
		}
		if id := sp.GetModelId(); id != "" {
			if id != want {
				return nil, fmt.Errorf("%w: the server stored the model as %q, not %q", ErrVerification, id, want)
			}
		}
		res.Inputs = infoToSpecs(sp.GetTensorInputs())
		res.Outputs = infoToSpecs(sp.GetTensorOutputs())
	}
	return res, nil
}
