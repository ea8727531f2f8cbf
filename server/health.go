package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/blindfold-ai/blindfold/attest"
)

// ops is the server's operations state: metrics, readiness, the gRPC
// health services and the metrics listener.
type ops struct {
	identityReady atomic.Bool
	evidenceReady atomic.Bool
	serving       atomic.Bool // between Start and Shutdown

	untrustedHealth, attestedHealth *health.Server

	httpSrv *http.Server
	httpLis net.Listener
	// stopProbe ends the start-up evidence probe.
	stopProbe chan struct{}
}

// initMetrics makes the server's metrics and wraps its evidence provider
// to count evidence. New calls it before it builds the gRPC servers.
func (s *Server) initMetrics() {
	s.metrics = newMetrics(s)
	if s.att != nil {
		s.att = meteredAttester{Attester: s.att, m: s.metrics, ready: func() {
			if !s.ops.evidenceReady.Swap(true) {
				s.updateHealth()
			}
		}}
	}
	s.ops.stopProbe = make(chan struct{})
}

// initHealth registers the standard gRPC health service on both ports
// (NOT_SERVING until the server is ready) and marks the identity ready
// unless identityPending (the cluster code then calls SetIdentityReady).
// New calls it once every service is registered.
func (s *Server) initHealth(identityPending bool) {
	s.ops.untrustedHealth = health.NewServer()
	s.ops.attestedHealth = health.NewServer()
	healthpb.RegisterHealthServer(s.untrusted, s.ops.untrustedHealth)
	healthpb.RegisterHealthServer(s.attested, s.ops.attestedHealth)
	s.metrics.learnMethods(s.untrusted)
	s.metrics.learnMethods(s.attested)
	if s.att == nil {
		s.ops.evidenceReady.Store(true) // simulation: there is no evidence to wait for
	}
	s.ops.identityReady.Store(!identityPending)
	s.updateHealth()
}

// SetIdentityReady says whether the server's identity is in place: made
// by New (the default), or joined from or bootstrapped for a cluster.
// While it is false the server is not ready (see Ready).
func (s *Server) SetIdentityReady(ready bool) {
	s.ops.identityReady.Store(ready)
	s.updateHealth()
}

// Ready says whether the server should receive traffic: it is serving,
// the engine is open, its identity is in place (SetIdentityReady) and, on
// a TEE, it has produced evidence at least once. When it is not, reasons
// says what is missing.
func (s *Server) Ready() (ok bool, reasons []string) {
	if !s.ops.serving.Load() {
		reasons = append(reasons, "not serving (starting or shutting down)")
	}
	if s.rt == nil || s.rt.Version() == "" {
		reasons = append(reasons, "engine: ONNX Runtime not open")
	}
	if !s.ops.identityReady.Load() {
		reasons = append(reasons, "identity: not yet joined or bootstrapped")
	}
	if !s.ops.evidenceReady.Load() {
		reasons = append(reasons, "evidence: the TEE has not produced evidence yet (see the logs)")
	}
	return len(reasons) == 0, reasons
}

// updateHealth sets both ports' gRPC health status from Ready.
func (s *Server) updateHealth() {
	if s.ops.untrustedHealth == nil {
		return
	}
	ok, _ := s.Ready()
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	for hs, g := range map[*health.Server]*grpc.Server{s.ops.untrustedHealth: s.untrusted, s.ops.attestedHealth: s.attested} {
		hs.SetServingStatus("", st)
		for name := range g.GetServiceInfo() {
			if name != healthpb.Health_ServiceDesc.ServiceName {
				hs.SetServingStatus(name, st)
			}
		}
	}
}

// startOps marks the server serving, starts the metrics listener when
// metrics are on and, on a TEE, the probe that readiness waits for.
// Start calls it once both ports listen.
func (s *Server) startOps() error {
	if s.cfg.Metrics {
		lis, err := net.Listen("tcp", s.cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("server: metrics listener: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{Registry: s.metrics.reg}))
		mux.HandleFunc("GET /healthz", s.serveHealthz)
		mux.HandleFunc("GET /readyz", s.serveReadyz)
		s.ops.httpLis = lis
		s.ops.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
		go func() {
			if err := s.ops.httpSrv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("metrics listener stopped", "err", err)
			}
		}()
		s.log.Info("metrics and health endpoints", "addr", lis.Addr().String(), "subject_labels", s.cfg.MetricsSubjectLabels)
	}
	s.ops.serving.Store(true)
	s.updateHealth()
	if !s.ops.evidenceReady.Load() {
		// Once now, so that a server whose TEE works is ready as it
		// starts; on failure, again in the background.
		wait := 5 * time.Second
		if err := s.tryEvidence(firstEvidenceTimeout); err != nil {
			s.log.Warn("not ready: no evidence from the TEE yet", "err", err, "retry_in", wait)
			go s.probeEvidence(s.ops.stopProbe, wait)
		}
	}
	return nil
}

// firstEvidenceTimeout bounds the evidence Start asks for.
const firstEvidenceTimeout = 10 * time.Second

// tryEvidence asks the TEE for evidence once; a success makes the server
// ready (see meteredAttester).
func (s *Server) tryEvidence(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := s.att.Evidence(ctx, attest.ReportData(s.id.DER, nil))
	s.updateHealth()
	return err
}

// probeEvidence asks the TEE for evidence until it gets some once (after
// wait, then doubling up to a minute between tries), so that readiness
// reflects whether clients can attest this server.
func (s *Server) probeEvidence(stop <-chan struct{}, wait time.Duration) {
	for !s.ops.evidenceReady.Load() {
		select {
		case <-stop:
			return
		case <-time.After(wait):
		}
		if s.ops.evidenceReady.Load() {
			break // a client's request got evidence meanwhile
		}
		err := s.tryEvidence(time.Minute)
		if err == nil {
			return
		}
		wait = min(2*wait, time.Minute)
		s.log.Warn("not ready: no evidence from the TEE yet", "err", err, "retry_in", wait)
	}
	s.updateHealth()
}

// stopOps marks the server not serving (so that load balancers stop
// sending it requests while in-flight ones finish). Shutdown calls it
// first; closeOps closes the metrics listener at the end.
func (s *Server) stopOps() {
	s.ops.serving.Store(false)
	close(s.ops.stopProbe)
	if s.ops.untrustedHealth != nil {
		s.ops.untrustedHealth.Shutdown()
		s.ops.attestedHealth.Shutdown()
	}
}

func (s *Server) closeOps() {
	if s.ops.httpSrv != nil {
		s.ops.httpSrv.Close()
	}
}

// MetricsAddr returns the metrics listener's bound address ("" when
// metrics are off or the server has not started).
func (s *Server) MetricsAddr() string {
	if s.ops.httpLis == nil {
		return ""
	}
	return s.ops.httpLis.Addr().String()
}

// serveHealthz answers 200 while the process serves (liveness).
func (s *Server) serveHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !s.ops.serving.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "shutting down")
		return
	}
	fmt.Fprintln(w, "ok")
}

// serveReadyz answers 200 when Ready, else 503 with what is missing.
func (s *Server) serveReadyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	ok, reasons := s.Ready()
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not ready:\n"+strings.Join(reasons, "\n"))
		return
	}
	fmt.Fprintln(w, "ready")
}
