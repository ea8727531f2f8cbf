package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/api/models"
	"github.com/blindfold-ai/blindfold/tensor"
)

// ErrNoCatalogue means the server does not offer Blindfold's model
// catalogue (blindfold.v1.Models): it is a BlindAI server, or an older
// Blindfold.
var ErrNoCatalogue = errors.New("client: the server does not list or describe models (no blindfold.v1.Models service)")

// ModelInfo describes a loaded model the caller may run.
type ModelInfo struct {
	// ID is the model's id.
	ID string
	// Hash is the SHA-256 of the model bytes.
	Hash []byte
	// Inputs and Outputs are the model's tensors as it declares them. A
	// nil Shape means the model does not declare the rank.
	Inputs, Outputs []TensorSpec
	// Owned is true when the caller uploaded the model.
	Owned bool
	// Owner is the caller's subject when Owned (empty without
	// authentication); the server never names another tenant.
	Owner string
	// Public models may be run by every authenticated subject.
	Public bool
	// Saved models are kept across restarts.
	Saved bool
	// Size is the model's size in bytes.
	Size int64
	// LoadedAt is when the server loaded the model (the host's clock).
	LoadedAt time.Time
}

// ListModels returns the models the caller may run: its own and the public
// ones, sorted by id. Another tenant's private model is never listed.
func (c *Client) ListModels(ctx context.Context) ([]ModelInfo, error) {
	reply, err := models.NewModelsClient(c.conn).ListModels(ctx, &models.ListModelsRequest{})
	if err != nil {
		return nil, catalogueError(err)
	}
	out := make([]ModelInfo, len(reply.GetModels()))
	for i, d := range reply.GetModels() {
		out[i] = modelInfo(d)
	}
	return out, nil
}

// DescribeModel returns the model the caller would run under id: its own
// model with that id, else the public one. A model the caller may not run
// is NOT_FOUND, like one that does not exist.
func (c *Client) DescribeModel(ctx context.Context, id string) (*ModelInfo, error) {
	if id == "" {
		return nil, errors.New("client: DescribeModel needs a model id")
	}
	d, err := models.NewModelsClient(c.conn).DescribeModel(ctx, &models.DescribeModelRequest{ModelId: id})
	if err != nil {
		return nil, catalogueError(err)
	}
	info := modelInfo(d)
	return &info, nil
}

func catalogueError(err error) error {
	if status.Code(err) == codes.Unimplemented {
		return fmt.Errorf("%w: %w", ErrNoCatalogue, err)
	}
	return err
}

func modelInfo(d *models.ModelDescription) ModelInfo {
	return ModelInfo{
		ID:       d.GetModelId(),
		Hash:     d.GetModelHash(),
		Inputs:   catalogueSpecs(d.GetInputs()),
		Outputs:  catalogueSpecs(d.GetOutputs()),
		Owned:    d.GetOwned(),
		Owner:    d.GetOwner(),
		Public:   d.GetPublic(),
		Saved:    d.GetSaved(),
		Size:     int64(d.GetSize()),
		LoadedAt: d.GetLoadedAt().AsTime(),
	}
}

func catalogueSpecs(specs []*models.TensorSpec) []TensorSpec {
	out := make([]TensorSpec, len(specs))
	for i, s := range specs {
		var shape []int64
		if s.GetRankKnown() {
			shape = append([]int64{}, s.GetShape()...)
		}
		out[i] = TensorSpec{Name: s.GetName(), DType: tensor.DType(s.GetDatumType()), Shape: shape}
	}
	return out
}
