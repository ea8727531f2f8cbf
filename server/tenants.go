package server

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/engine"
	"github.com/blindfold-ai/blindfold/store"
)

// acquireModel finds the model subject may run under id, reloading it
// from sealed storage if it was evicted, and maps the store's errors to
// statuses. Another subject's private model is not found, exactly like a
// model that does not exist: its existence is not the caller's to learn.
func (s *Server) acquireModel(ctx context.Context, subject, id string) (*store.Model, func(), error) {
	if s.cluster != nil {
		return s.acquireClusterModel(ctx, subject, id)
	}
	return s.acquireStoreModel(ctx, subject, id)
}

func (s *Server) acquireStoreModel(ctx context.Context, subject, id string) (*store.Model, func(), error) {
	m, release, err := s.models.AcquireContext(ctx, subject, id)
	switch {
	case err == nil:
		return m, release, nil
	case errors.Is(err, store.ErrNotFound):
		return nil, nil, errorf(codes.NotFound, "no model with id %q that you may run is loaded", id)
	case errors.Is(err, store.ErrNoSpace), errors.Is(err, store.ErrTooManyModels):
		return nil, nil, errorf(codes.ResourceExhausted, "model %q was evicted from memory to sealed storage and there is no room to reload it now (max_total_model_bytes, max_models): the models in memory are in use or were not saved; retry later", id)
	case ctx.Err() != nil:
		return nil, nil, contextStatus(ctx.Err())
	default:
		var se interface{ GRPCStatus() *status.Status }
		if errors.As(err, &se) { // no load slot in time
			return nil, nil, se.GRPCStatus().Err()
		}
		return nil, nil, errorf(codes.Unavailable, "model %q was evicted from memory and could not be reloaded from sealed storage; retry later", id)
	}
}

// reloadModel is the store's ReloadFunc: it loads an evicted model again
// from its sealed copy, in a load slot (max_concurrent_loads), and checks
// that the copy is the model that was accepted (owner, id, hash, tensor
// specs).
func (s *Server) reloadModel(ctx context.Context, m *store.Model) (*engine.Session, error) {
	release, err := s.loadSlot(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	start := time.Now()
	h, model, err := s.sealer.Open(s.sealer.Path(m.Owner, m.ID), int64(s.cfg.MaxModelBytes))
	if err != nil {
		s.log.Error("evicted model cannot be reloaded: its sealed copy cannot be opened", "model_id", m.ID, "tenant", m.Owner, "err", err)
		return nil, err
	}
	defer clear(model)
	if h.ModelID != m.ID || h.Owner != m.Owner || h.SHA256 != hex.EncodeToString(m.Hash[:]) {
		s.log.Error("evicted model cannot be reloaded: its sealed copy holds another model", "model_id", m.ID, "tenant", m.Owner)
		return nil, fmt.Errorf("sealed copy of %q holds another model", m.ID)
	}
	sess, err := s.rt.Load(model)
	if err != nil {
		s.log.Error("evicted model cannot be reloaded", "model_id", m.ID, "tenant", m.Owner, "err", err)
		return nil, err
	}
	if !sameSpecs(h.Inputs, sess.Inputs()) || !sameSpecs(h.Outputs, sess.Outputs()) {
		sess.Close()
		return nil, fmt.Errorf("model %q: tensor specs differ from the sealed header", m.ID)
	}
	t := s.models.Tenant(m.Owner)
	s.log.Info("evicted model reloaded", "model_id", m.ID, "tenant", m.Owner, "bytes", m.Size, "took", time.Since(start),
		"tenant_reloads", t.Reloads+1, "tenant_reload_time", t.ReloadTime+time.Since(start))
	return sess, nil
}

// logEviction logs one eviction with its tenant's counts.
func (s *Server) logEviction(i store.Info) {
	t := s.models.Tenant(i.Owner)
	s.log.Info("model evicted from memory to sealed storage", "model_id", i.ID, "tenant", i.Owner, "bytes", i.Size,
		"tenant_models", t.Models, "tenant_loaded", t.Loaded, "tenant_evictions", t.Evictions, "tenant_reloads", t.Reloads)
}

// TenantStats are one tenant's model and inference-slot counts.
type TenantStats struct {
	store.TenantStats
	// Queue holds the tenant's inference-slot counts.
	Queue QueueStats
}

// Tenants returns every tenant's counts (models held and in memory,
// evictions, reloads and their time, queue waits), sorted by tenant.
func (s *Server) Tenants() []TenantStats {
	byTenant := map[string]*TenantStats{}
	var out []TenantStats
	for _, t := range s.models.Tenants() {
		out = append(out, TenantStats{TenantStats: t})
	}
	for i := range out {
		byTenant[out[i].Owner] = &out[i]
	}
	for _, q := range s.sched.queueStats() {
		if t := byTenant[q.Tenant]; t != nil {
			t.Queue = q
			continue
		}
		out = append(out, TenantStats{TenantStats: store.TenantStats{Owner: q.Tenant}, Queue: q})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Owner < out[j].Owner })
	return out
}

// tenantLogInterval is how often logTenants writes each active tenant's
// counts.
const tenantLogInterval = time.Minute

// logTenants logs, every tenantLogInterval until stop closes, the counts
// of each tenant whose counts changed since the last time.
func (s *Server) logTenants(stop <-chan struct{}) {
	t := time.NewTicker(tenantLogInterval)
	defer t.Stop()
	last := map[string]TenantStats{}
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		for _, ts := range s.Tenants() {
			if last[ts.Owner] == ts {
				continue
			}
			last[ts.Owner] = ts
			s.log.Info("tenant", "tenant", ts.Owner, "models", ts.Models, "loaded", ts.Loaded, "loaded_bytes", ts.LoadedBytes, "bytes", ts.Bytes,
				"evictions", ts.Evictions, "reloads", ts.Reloads, "reload_failures", ts.ReloadFailures, "reload_time", ts.ReloadTime,
				"runs", ts.Queue.Runs, "runs_waited", ts.Queue.Waited, "wait_time", ts.Queue.WaitTime, "max_wait", ts.Queue.MaxWait, "runs_refused", ts.Queue.Refused)
		}
	}
}

// modelRoomStatus maps the store's refusal of an upload (Reserve's Grow or
// Add) to a status that names the setting.
func modelRoomStatus(err error) error {
	switch {
	case errors.Is(err, store.ErrQuota):
		return errorf(codes.ResourceExhausted, "no room for this model in your quota: %v (tenant_max_models, tenant_max_model_bytes); delete one of your models first", err)
	case errors.Is(err, store.ErrTooManyModels):
		return errorf(codes.ResourceExhausted, "no room for this model: %v (max_models, max_stored_models); delete a model first", err)
	default:
		return errorf(codes.ResourceExhausted, "no room for this model: %v (max_total_model_bytes)", err)
	}
}

// HeldModels lists the models the server holds, in memory or evicted to
// sealed storage, sorted by owner, then id.
func (s *Server) HeldModels() []store.Info { return s.models.List() }
