package server

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/blindfold-ai/blindfold/engine"
)

// loadModel loads an uploaded model in one of max_concurrent_loads slots.
// Loading costs CPU and memory in proportion to the model's nodes and
// weights, all before anything can be refused for its size, so loads are
// bounded apart from runs: an upload waits up to load_queue_timeout for a
// slot (while its model is already counted against max_total_model_bytes),
// then gets RESOURCE_EXHAUSTED. Engine errors are mapped through
// engineStatuses.
func (s *Server) loadModel(ctx context.Context, id string, model []byte) (*engine.Session, error) {
	release, err := s.loadSlot(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	start := time.Now()
	sess, err := s.rt.Load(model)
	if err != nil {
		return nil, s.engineError(err, id)
	}
	s.log.Debug("model parsed", "model_id", id, "took", time.Since(start))
	return sess, nil
}

// loadSlot takes a load slot, waiting up to load_queue_timeout or until
// ctx ends.
func (s *Server) loadSlot(ctx context.Context) (func(), error) {
	select {
	case s.loads <- struct{}{}:
		return func() { <-s.loads }, nil
	default:
	}
	t := time.NewTimer(time.Duration(s.cfg.LoadQueueTimeout))
	defer t.Stop()
	select {
	case s.loads <- struct{}{}:
		return func() { <-s.loads }, nil
	case <-t.C:
		return nil, errorf(codes.ResourceExhausted, "the server is busy: %d models are being loaded (max_concurrent_loads) and none finished within %s; retry later", cap(s.loads), s.cfg.LoadQueueTimeout)
	case <-ctx.Done():
		return nil, contextStatus(ctx.Err())
	}
}
