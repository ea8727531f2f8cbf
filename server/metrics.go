package server

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/pccs"
)

// Protocol labels of the request metrics (see RecordRequest).
const (
	// ProtocolBlindAI05 is the BlindAI 0.5 gRPC protocol (services
	// untrusted.Attestation and securedexchange.Exchange).
	ProtocolBlindAI05 = "blindai05"
	// ProtocolBlindfold is Blindfold's own gRPC services (blindfold.v1.*).
	ProtocolBlindfold = "blindfold"
	// ProtocolGRPCHealth is the standard gRPC health service.
	ProtocolGRPCHealth = "grpc-health"
	// ProtocolBlindAI06 is the BlindAI 0.6 HTTP front end.
	ProtocolBlindAI06 = "blindai06"
)

// latencyBuckets cover a metadata call (milliseconds) to a long
// inference or a large upload (minutes).
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// metrics are one server's Prometheus collectors, in a registry of their
// own (tests run many servers in one process).
type metrics struct {
	reg *prometheus.Registry

	requests      *prometheus.CounterVec   // port, protocol, rpc, code
	latency       *prometheus.HistogramVec // port, protocol, rpc
	bytesIn       *prometheus.CounterVec   // port, protocol
	bytesOut      *prometheus.CounterVec   // port, protocol
	engineRun     prometheus.Histogram
	queueWait     prometheus.Histogram
	queueRefused  prometheus.Counter
	evidence      *prometheus.CounterVec // result
	evidenceTime  prometheus.Histogram
	peers         prometheus.Gauge
	knownMethods  map[string]bool // full method names served; others are "unknown"
	knownMethodMu sync.RWMutex
}

// collateral fetches are counted process-wide: the PCCS cache is made
// before the server it serves, and a process runs one server outside
// tests.
var (
	collateralFetches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "blindfold_collateral_fetches_total",
		Help: "Fetches of attestation collateral (TCB info, QE identity, CRLs) from the PCCS or Intel PCS, by result (ok, error).",
	}, []string{"result"})
	// lastCollateral is the Unix time in nanoseconds of the newest
	// successful collateral fetch (0: none yet).
	lastCollateral atomic.Int64
	collateralAge  = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "blindfold_collateral_age_seconds",
		Help: "Seconds since the newest attestation collateral was fetched (-1 before the first fetch).",
	}, func() float64 {
		t := lastCollateral.Load()
		if t == 0 {
			return -1
		}
		return time.Since(time.Unix(0, t)).Seconds()
	})
)

// ObserveCollateralFetch records one collateral fetch; it is the
// pccs.Cache OnFetch hook of the server's evidence provider.
func ObserveCollateralFetch(_ pccs.Platform, f *pccs.Fetched, err error) {
	if err != nil {
		collateralFetches.WithLabelValues("error").Inc()
		return
	}
	collateralFetches.WithLabelValues("ok").Inc()
	at := time.Now()
	if f != nil && !f.FetchedAt.IsZero() {
		at = f.FetchedAt
	}
	lastCollateral.Store(at.UnixNano())
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), knownMethods: map[string]bool{}}
	f := promFactory{m.reg}
	m.requests = f.counterVec("blindfold_requests_total",
		"Requests finished, by port (untrusted, attested, or a front end's name), protocol, RPC and gRPC status code.",
		"port", "protocol", "rpc", "code")
	m.latency = f.histogramVec("blindfold_request_duration_seconds",
		"End-to-end time of a request, from its first byte to its status, by port, protocol and RPC.",
		"port", "protocol", "rpc")
	m.bytesIn = f.counterVec("blindfold_received_bytes_total", "Message bytes received (after TLS), by port and protocol.", "port", "protocol")
	m.bytesOut = f.counterVec("blindfold_sent_bytes_total", "Message bytes sent (before TLS), by port and protocol.", "port", "protocol")
	m.engineRun = f.histogram("blindfold_engine_run_duration_seconds", "Time an inference holds its slot: ONNX Runtime's run of the model.")
	m.queueWait = f.histogram("blindfold_run_queue_wait_seconds", "Time runs waited for an inference slot (0 when one was free), refused runs included.")
	m.queueRefused = f.counter("blindfold_run_queue_refused_total", "Runs refused because no inference slot was free within run_queue_timeout (or the client gave up).")
	m.evidence = f.counterVec("blindfold_evidence_requests_total", "Hardware evidence produced for clients (quotes with collateral), by result (ok, error).", "result")
	m.evidenceTime = f.histogram("blindfold_evidence_duration_seconds", "Time the TEE took to produce evidence, collateral included.")
	m.peers = f.gauge("blindfold_cluster_peers", "Peers this replica has joined in its cluster (0 alone).")
	gauge := func(name, help string, fn func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
	}
	gauge("blindfold_models_held", "Models held, in memory or evicted to sealed storage.", func() float64 {
		n, _ := s.models.Usage()
		return float64(n)
	})
	gauge("blindfold_model_bytes_reserved", "Bytes counted against max_total_model_bytes: models in memory, uploads and reloads in progress.", func() float64 {
		_, b := s.models.Usage()
		return float64(b)
	})
	gauge("blindfold_model_bytes_limit", "The memory budget of loaded models (max_total_model_bytes).", func() float64 { return float64(s.cfg.MaxTotalModelBytes) })
	m.reg.MustRegister(&modelsCollector{s: s})
	gauge("blindfold_run_slots", "Inference slots (max_concurrent_runs).", func() float64 { return float64(s.cfg.MaxConcurrentRuns) })
	gauge("blindfold_run_slots_in_use", "Inference slots held by running inferences.", func() float64 {
		inUse, _ := s.sched.occupancy()
		return float64(inUse)
	})
	gauge("blindfold_run_queue_length", "Runs waiting for an inference slot.", func() float64 {
		_, waiting := s.sched.occupancy()
		return float64(waiting)
	})
	gauge("blindfold_ready", "1 when the server is ready (engine, identity and evidence in place; see /readyz), else 0.", func() float64 {
		if ok, _ := s.Ready(); ok {
			return 1
		}
		return 0
	})
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "blindfold_build_info", Help: "Always 1; labels give the server's version, protocol version and ONNX Runtime version.",
		ConstLabels: prometheus.Labels{"version": Version, "protocol_version": ProtocolVersion, "onnxruntime": s.rt.Version()},
	}, func() float64 { return 1 }))
	m.reg.MustRegister(collateralFetches, collateralAge)
	if s.cfg.MetricsSubjectLabels {
		m.reg.MustRegister(&tenantCollector{s: s})
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// promFactory makes collectors registered in one registry.
type promFactory struct{ reg *prometheus.Registry }

func (f promFactory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f promFactory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f promFactory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f promFactory) histogram(name, help string) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: latencyBuckets})
	f.reg.MustRegister(h)
	return h
}

func (f promFactory) histogramVec(name, help string, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: latencyBuckets}, labels)
	f.reg.MustRegister(h)
	return h
}

// modelsCollector reports the models in memory and their bytes, summed
// over tenants (no tenant label).
type modelsCollector struct{ s *Server }

var (
	descLoaded      = prometheus.NewDesc("blindfold_models_loaded", "Models loaded in memory (an ONNX Runtime session open).", nil, nil)
	descLoadedBytes = prometheus.NewDesc("blindfold_models_loaded_bytes", "Bytes of the models loaded in memory.", nil, nil)
	descEvictions   = prometheus.NewDesc("blindfold_model_evictions_total", "Models evicted from memory to sealed storage.", nil, nil)
	descReloads     = prometheus.NewDesc("blindfold_model_reloads_total", "Evicted models reloaded from sealed storage.", nil, nil)
)

func (c *modelsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descLoaded
	ch <- descLoadedBytes
	ch <- descEvictions
	ch <- descReloads
}

func (c *modelsCollector) Collect(ch chan<- prometheus.Metric) {
	var loaded, bytes, evictions, reloads float64
	for _, t := range c.s.models.Tenants() {
		loaded += float64(t.Loaded)
		bytes += float64(t.LoadedBytes)
		evictions += float64(t.Evictions)
		reloads += float64(t.Reloads)
	}
	ch <- prometheus.MustNewConstMetric(descLoaded, prometheus.GaugeValue, loaded)
	ch <- prometheus.MustNewConstMetric(descLoadedBytes, prometheus.GaugeValue, bytes)
	ch <- prometheus.MustNewConstMetric(descEvictions, prometheus.CounterValue, evictions)
	ch <- prometheus.MustNewConstMetric(descReloads, prometheus.CounterValue, reloads)
}

// tenantCollector reports per-subject counts, labelled by subject; only
// when the operator turns on metrics_subject_labels.
type tenantCollector struct{ s *Server }

var (
	descTenantModels = prometheus.NewDesc("blindfold_tenant_models", "Models one subject holds, in memory or evicted.", []string{"subject"}, nil)
	descTenantBytes  = prometheus.NewDesc("blindfold_tenant_model_bytes", "Bytes of one subject's models and uploads in progress.", []string{"subject"}, nil)
	descTenantRuns   = prometheus.NewDesc("blindfold_tenant_runs_total", "Inference slots granted to one subject.", []string{"subject"}, nil)
	descTenantWait   = prometheus.NewDesc("blindfold_tenant_run_queue_wait_seconds_total", "Time one subject's runs waited for slots together.", []string{"subject"}, nil)
)

func (c *tenantCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTenantModels
	ch <- descTenantBytes
	ch <- descTenantRuns
	ch <- descTenantWait
}

func (c *tenantCollector) Collect(ch chan<- prometheus.Metric) {
	for _, t := range c.s.Tenants() {
		ch <- prometheus.MustNewConstMetric(descTenantModels, prometheus.GaugeValue, float64(t.Models), t.Owner)
		ch <- prometheus.MustNewConstMetric(descTenantBytes, prometheus.GaugeValue, float64(t.Bytes), t.Owner)
		ch <- prometheus.MustNewConstMetric(descTenantRuns, prometheus.CounterValue, float64(t.Queue.Runs), t.Owner)
		ch <- prometheus.MustNewConstMetric(descTenantWait, prometheus.CounterValue, t.Queue.WaitTime.Seconds(), t.Owner)
	}
}

// protocolOf names the protocol of a gRPC service from its full method
// name (/package.Service/Method).
func protocolOf(fullMethod string) string {
	switch {
	case strings.HasPrefix(fullMethod, "/blindfold."):
		return ProtocolBlindfold
	case strings.HasPrefix(fullMethod, "/grpc.health."):
		return ProtocolGRPCHealth
	default:
		return ProtocolBlindAI05
	}
}

// learnMethods records the methods g serves, so that the rpc label holds
// only those (a client's made-up method name is "unknown").
func (m *metrics) learnMethods(g *grpc.Server) {
	m.knownMethodMu.Lock()
	defer m.knownMethodMu.Unlock()
	for svc, info := range g.GetServiceInfo() {
		for _, meth := range info.Methods {
			m.knownMethods["/"+svc+"/"+meth.Name] = true
		}
	}
}

func (m *metrics) rpcLabel(fullMethod string) string {
	m.knownMethodMu.RLock()
	defer m.knownMethodMu.RUnlock()
	if m.knownMethods[fullMethod] {
		return strings.TrimPrefix(fullMethod, "/")
	}
	return "unknown"
}

// RecordRequest counts one finished request of a front end that is not
// one of the gRPC ports (such as the BlindAI 0.6 HTTP front end, protocol
// ProtocolBlindAI06): port names the front end, rpc the operation (a fixed
// name, never a model id or subject), code its outcome as a gRPC code name
// (for example "OK", "NOT_FOUND"; see google.golang.org/grpc/codes),
// elapsed its end-to-end time and in, out the bytes received and sent.
func (s *Server) RecordRequest(port, protocol, rpc, code string, elapsed time.Duration, in, out int64) {
	m := s.metrics
	m.requests.WithLabelValues(port, protocol, rpc, code).Inc()
	m.latency.WithLabelValues(port, protocol, rpc).Observe(elapsed.Seconds())
	m.bytesIn.WithLabelValues(port, protocol).Add(float64(in))
	m.bytesOut.WithLabelValues(port, protocol).Add(float64(out))
}

// SetPeers sets the number of cluster peers this replica has joined, for
// the blindfold_cluster_peers gauge.
func (s *Server) SetPeers(n int) { s.metrics.peers.Set(float64(n)) }

// MetricsRegistry returns the registry of the server's metrics, for a
// caller that serves them itself or adds its own collectors.
func (s *Server) MetricsRegistry() *prometheus.Registry { return s.metrics.reg }

// rpcMetrics is a gRPC stats handler that counts one port's requests, their
// time and bytes.
type rpcMetrics struct {
	m    *metrics
	port string
}

type rpcInfoKey struct{}

type rpcInfo struct {
	method   string
	protocol string
}

func (h *rpcMetrics) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, rpcInfoKey{}, &rpcInfo{method: h.m.rpcLabel(info.FullMethodName), protocol: protocolOf(info.FullMethodName)})
}

func (h *rpcMetrics) HandleRPC(ctx context.Context, st stats.RPCStats) {
	info, _ := ctx.Value(rpcInfoKey{}).(*rpcInfo)
	if info == nil {
		return
	}
	switch st := st.(type) {
	case *stats.InPayload:
		h.m.bytesIn.WithLabelValues(h.port, info.protocol).Add(float64(st.WireLength))
	case *stats.OutPayload:
		h.m.bytesOut.WithLabelValues(h.port, info.protocol).Add(float64(st.WireLength))
	case *stats.End:
		code := status.Code(st.Error)
		h.m.requests.WithLabelValues(h.port, info.protocol, info.method, codeName(code.String())).Inc()
		h.m.latency.WithLabelValues(h.port, info.protocol, info.method).Observe(st.EndTime.Sub(st.BeginTime).Seconds())
	}
}

func (h *rpcMetrics) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (h *rpcMetrics) HandleConn(context.Context, stats.ConnStats)                       {}

// codeName turns a codes.Code's String ("NotFound") into the status name
// of the gRPC specification ("NOT_FOUND").
func codeName(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' && s[i-1] >= 'a' && s[i-1] <= 'z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

// meteredAttester counts the evidence an attester produces and its time.
// A success calls ready (the server's evidence is in place).
type meteredAttester struct {
	attest.Attester
	m     *metrics
	ready func()
}

func (a meteredAttester) Evidence(ctx context.Context, reportData [64]byte) (*attest.Evidence, error) {
	start := time.Now()
	ev, err := a.Attester.Evidence(ctx, reportData)
	a.m.evidenceTime.Observe(time.Since(start).Seconds())
	if err != nil {
		a.m.evidence.WithLabelValues("error").Inc()
	} else {
		a.m.evidence.WithLabelValues("ok").Inc()
		a.ready()
	}
	return ev, err
}

// meterSlot observes a run's wait for its slot and, through the release
// function it returns, the time it held it (the engine's run).
func (s *Server) meterSlot(release func(), waited time.Duration, err error) func() {
	s.metrics.queueWait.Observe(waited.Seconds())
	if err != nil {
		s.metrics.queueRefused.Inc()
		return release
	}
	start := time.Now()
	var once sync.Once
	return func() {
		once.Do(func() { s.metrics.engineRun.Observe(time.Since(start).Seconds()) })
		release()
	}
}

// occupancy returns the slots in use and the runs waiting for one.
func (s *scheduler) occupancy() (inUse, waiting int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range s.tenants {
		waiting += len(q.waiting)
	}
	return s.slots - s.free, waiting
}
