package server

import (
	"context"
	"net"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/blindfold-ai/blindfold/api/models"
	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/engine"
	"github.com/blindfold-ai/blindfold/store"
)

// catalogueService implements blindfold.v1.Models on the attested port: it
// lists and describes the models a caller may run. A caller sees its own
// models and public ones; another tenant's private model is never listed,
// and describing one answers NOT_FOUND in the same words as a model that
// does not exist.
type catalogueService struct {
	models.UnimplementedModelsServer
	s *Server
}

// ListModels returns the caller's own models and the public ones.
func (c *catalogueService) ListModels(ctx context.Context, _ *models.ListModelsRequest) (*models.ListModelsReply, error) {
	subject, done, err := c.s.authorize(ctx, "")
	if err != nil {
		return nil, err
	}
	defer done()
	if c.s.cluster != nil {
		c.s.clusterSyncAll()
	}
	reply := &models.ListModelsReply{}
	for _, m := range c.s.models.Visible(subject) {
		reply.Models = append(reply.Models, describe(m, subject))
	}
	return reply, nil
}

// DescribeModel returns the model the caller would run under an id.
func (c *catalogueService) DescribeModel(ctx context.Context, req *models.DescribeModelRequest) (*models.ModelDescription, error) {
	subject, done, err := c.s.authorize(ctx, "")
	if err != nil {
		return nil, err
	}
	defer done()
	id := req.GetModelId()
	if id == "" {
		return nil, errorf(codes.InvalidArgument, "model_id is empty; name the model to describe")
	}
	if c.s.cluster != nil {
		c.s.clusterSyncAll()
	}
	for _, m := range c.s.models.Visible(subject) {
		if m.ID == id {
			return describe(m, subject), nil
		}
	}
	return nil, errorf(codes.NotFound, "no model with id %q is loaded that you may use", id)
}

// describe makes the description of m for caller; the owner is named only
// to the owner.
func describe(m *store.Model, caller string) *models.ModelDescription {
	d := &models.ModelDescription{
		ModelId:   m.ID,
		ModelHash: append([]byte(nil), m.Hash[:]...),
		Owned:     m.Owner == caller,
		Public:    m.Public,
		Saved:     m.Saved,
		Size:      uint64(max(m.Size, 0)),
		LoadedAt:  timestamppb.New(m.Loaded),
	}
	if d.Owned {
		d.Owner = m.Owner
	}
	d.Inputs = catalogueSpecs(m.Inputs)
	d.Outputs = catalogueSpecs(m.Outputs)
	return d
}

func catalogueSpecs(specs []engine.TensorSpec) []*models.TensorSpec {
	out := make([]*models.TensorSpec, len(specs))
	for i, s := range specs {
		out[i] = &models.TensorSpec{
			Name:      s.Name,
			DatumType: securedexchange.DatumTypeEnum(s.DType),
			Shape:     append([]int64(nil), s.Shape...),
			RankKnown: s.Shape != nil,
		}
	}
	return out
}

// servedPorts returns the TCP ports both listeners are bound to (0 before
// Start), for GetServerInfo.
func (s *Server) servedPorts() (untrustedPort, attestedPort uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return listenerPort(s.untrLis), listenerPort(s.attLis)
}

func listenerPort(l net.Listener) uint32 {
	if l == nil {
		return 0
	}
	_, p, err := net.SplitHostPort(l.Addr().String())
	if err != nil {
		return 0
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return 0
	}
	return uint32(n)
}
