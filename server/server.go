// Package server runs Blindfold's two gRPC ports: the untrusted port
// (service untrusted.Attestation, TLS with the operator's certificate) and
// the attested port (service securedexchange.Exchange, TLS with a key made
// in memory at every start). It owns request limits and the lifecycle.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/stats"

	"github.com/blindfold-ai/blindfold/api/evidence"
	"github.com/blindfold-ai/blindfold/api/models"
	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/api/untrusted"
	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/snp"
	"github.com/blindfold-ai/blindfold/engine"
	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/internal/wire"
	"github.com/blindfold-ai/blindfold/store"
)

// ProtocolVersion is the wire-protocol version GetServerInfo reports. It is
// the version of the BlindAI protocol spoken, not of this server: BlindAI
// 0.5 clients accept any 0.5.x.
const ProtocolVersion = "0.5.0"

// Version is Blindfold's own version, reported in GetServerInfo's
// server_version field. Release builds set it with -ldflags -X.
var Version = "0.1.0-dev"

// SimulationWarning is logged at start and on every connection in
// simulation mode.
const SimulationWarning = "SIMULATION MODE: no TEE, no attestation. The host can read every model and input. Do NOT send real data."

// Options configure a Server.
type Options struct {
	// Config is the validated server configuration.
	Config Config
	// Runtime is the ONNX Runtime that loads models.
	Runtime *engine.Runtime
	// Logger receives the server's logs (slog.Default() if nil). Logs never
	// hold model bytes, inputs, outputs or keys.
	Logger *slog.Logger
	// Attester produces the hardware evidence of the untrusted port. Nil:
	// the one the configuration names (tee), if any. A server without
	// simulation needs one; a simulation server refuses one.
	Attester attest.Attester
	// Frontends are further protocols served on their own ports, such as
	// BlindAI 0.6's HTTP/CBOR (package server/blindai06), each started
	// with the server and sharing its Core.
	Frontends []Frontend
	// ClusterTestRoot replaces the Intel SGX root CA when replicas of a
	// cluster verify each other's evidence. FOR TESTS ONLY: evidence that
	// chains to a test root proves nothing about hardware. There is no
	// setting for it.
	ClusterTestRoot *x509.Certificate
	// ClusterNow is the time replicas verify each other's evidence at
	// (nil: time.Now). For tests with fixed-date test collateral.
	ClusterNow func() time.Time
	// ClusterSNP adjusts how replicas of an SEV-SNP cluster verify each
	// other's reports. FOR TESTS ONLY (test roots, a CRL); the zero value
	// asks AMD's KDS, as clients do. There is no setting for it.
	ClusterSNP snp.Options
	// IdentityPending keeps the server not ready until SetIdentityReady
	// (true) says its identity was joined from or bootstrapped for a
	// cluster. False: the identity New makes is the one it serves with.
	IdentityPending bool
}

// Server is a running (or ready to run) Blindfold server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	rt      *engine.Runtime
	id      *identity.Attested
	hostTLS tls.Certificate
	hostDER []byte
	models  *store.Store
	sealer  *store.Sealer
	att     attest.Attester
	auth    *authenticator
	// sched shares the inference slots fairly between tenants.
	sched *scheduler
	// inflight is the budget of input bytes held by runs in progress.
	inflight byteBudget
	loads    chan struct{} // one token per model-load slot
	// core is the protocol-independent request handling; frontends are
	// the protocols served beside gRPC.
	core      *Core
	frontends []Frontend

	untrusted *grpc.Server
	attested  *grpc.Server

	mu        sync.Mutex
	untrLis   net.Listener
	attLis    net.Listener
	serveErrs chan error
	stopped   bool
	// stopLog ends logTenants.
	stopLog chan struct{}
	// cluster is this replica's part of a cluster (nil: a lone server).
	cluster *clusterState

	// metrics and ops: Prometheus metrics, readiness and health (see
	// metrics.go, health.go).
	metrics *metrics
	ops     ops
	// replica is the id of this replica that signed receipts carry.
	replica replicaState
}

// New prepares a server: it makes the attested identity and loads (or
// generates) the operator certificate. It refuses to run without a TEE
// unless the configuration asks for simulation.
func New(opts Options) (*Server, error) {
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Runtime == nil {
		return nil, errors.New("server: no engine runtime given")
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	att, err := newAttester(cfg, opts.Attester, log)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("server: state folder: %w", err)
	}
	rt, err := opts.Runtime.WithModelLimits(engine.ModelLimits{Nodes: cfg.MaxModelNodes, Initializers: cfg.MaxModelInitializers})
	if err != nil {
		return nil, err
	}
	if cfg.BlindAI06 && !slices.ContainsFunc(opts.Frontends, func(f Frontend) bool { return f.Name() == BlindAI06Frontend }) {
		return nil, errors.New("server: blindai06 = true, but this program was built without the BlindAI 0.6 front end (server/blindai06)")
	}
	s := &Server{cfg: cfg, log: log, rt: rt, att: att, frontends: opts.Frontends}
	s.core = &Core{s: s}
	s.replica.issuing = make(chan struct{}, 1)
	if cfg.Simulation {
		s.replica.initSimulation()
	}
	s.initMetrics()
	s.models = store.NewWithOptions(store.Options{
		Limits: store.Limits{
			MaxLoaded: cfg.MaxModels, MaxBytes: int64(cfg.MaxTotalModelBytes), MaxModels: cfg.MaxStoredModels,
			TenantModels: cfg.TenantMaxModels, TenantBytes: int64(cfg.TenantModelBytes()),
		},
		Reload:     s.reloadModel,
		OnCloseErr: func(err error) { log.Error("model session close failed", "err", err) },
		OnEvict:    s.logEviction,
	})
	if s.auth, err = newAuthenticator(cfg); err != nil {
		return nil, err
	}
	s.sched = newScheduler(cfg.MaxConcurrentRuns, cfg.RunsPerSubject())
	s.stopLog = make(chan struct{})
	s.inflight = byteBudget{max: int64(cfg.MaxInflightInputBytes)}
	s.loads = make(chan struct{}, cfg.MaxConcurrentLoads)
	if err := s.loadHostCertificate(); err != nil {
		return nil, err
	}
	if cfg.Cluster != "" {
		if err := s.newClusterReplica(opts); err != nil {
			return nil, err
		}
	} else {
		if s.id, err = identity.NewAttested(); err != nil {
			return nil, err
		}
		key, err := s.sealingKey()
		switch {
		case errors.Is(err, errNoCVMSealingKey):
			// No key: the server runs, keeps models in memory only and
			// refuses every upload that asks to save (s.sealer stays nil).
			s.log.Warn("saving models is refused: " + errNoCVMSealingKey.Error())
		case err != nil:
			return nil, err
		default:
			s.sealer, err = store.NewSealer(filepath.Join(cfg.StateDir, "models"), key)
			clear(key)
			if err != nil {
				return nil, fmt.Errorf("server: %w", err)
			}
			s.loadSealed()
		}
	}
	s.untrusted = s.newGRPCServer(&tls.Config{
		Certificates: []tls.Certificate{s.hostTLS},
		MinVersion:   tls.VersionTLS12,
	}, "untrusted")
	untrusted.RegisterAttestationServer(s.untrusted, &attestationService{s: s})
	evidence.RegisterEvidenceServer(s.untrusted, &evidenceService{s: s})
	s.attested = s.newGRPCServer(&tls.Config{
		Certificates: []tls.Certificate{s.id.Certificate},
		MinVersion:   tls.VersionTLS13,
	}, "attested")
	securedexchange.RegisterExchangeServer(s.attested, &exchangeService{s: s})
	models.RegisterModelsServer(s.attested, &catalogueService{s: s})
	// Evidence on the attested port too: a client whose attested
	// connection reached another replica of a cluster than its untrusted
	// one asks that replica, over that connection, for the evidence to
	// put in its proofs (client.servingEvidence).
	evidence.RegisterEvidenceServer(s.attested, &evidenceService{s: s})
	s.initHealth(opts.IdentityPending)
	return s, nil
}

func (s *Server) loadHostCertificate() error {
	certPath, keyPath := s.cfg.HostCert, s.cfg.HostKey
	if certPath == "" {
		certPath = filepath.Join(s.cfg.StateDir, "host_server.pem")
		keyPath = filepath.Join(s.cfg.StateDir, "host_server.key")
		_, errC := os.Stat(certPath)
		_, errK := os.Stat(keyPath)
		switch {
		case errors.Is(errC, os.ErrNotExist) && errors.Is(errK, os.ErrNotExist):
			if _, err := identity.GenerateHostCertificate(certPath, keyPath); err != nil {
				return fmt.Errorf("server: generating the untrusted port's certificate: %w", err)
			}
			s.log.Warn("no operator certificate configured (host_cert/host_key): generated a self-signed one for the untrusted port; clients must be given this certificate or use trust-on-first-use",
				"cert", certPath, "key", keyPath)
		case errC != nil || errK != nil:
			return fmt.Errorf("server: %s and %s must both exist or both be absent", certPath, keyPath)
		}
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return fmt.Errorf("server: loading the untrusted port's certificate %s and key %s: %w", certPath, keyPath, err)
	}
	s.hostTLS = pair
	s.hostDER = pair.Certificate[0]
	s.log.Info("untrusted port certificate", "path", certPath, "sha256", identity.Fingerprint(s.hostDER))
	return nil
}

func (s *Server) newGRPCServer(tlsCfg *tls.Config, port string) *grpc.Server {
	cfg := s.cfg
	return grpc.NewServer(
		grpc.Creds(credentials.NewTLS(tlsCfg)),
		grpc.MaxRecvMsgSize(int(cfg.MaxMessageBytes)),
		grpc.MaxSendMsgSize(int(cfg.MaxReplyBytes)+1<<20),
		grpc.MaxConcurrentStreams(uint32(cfg.MaxConcurrentStreams)),
		grpc.InitialWindowSize(4<<20),
		grpc.InitialConnWindowSize(16<<20),
		grpc.ReadBufferSize(256<<10),
		grpc.WriteBufferSize(256<<10),
		grpc.ConnectionTimeout(time.Duration(cfg.HandshakeTimeout)),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: time.Duration(cfg.IdleTimeout), Time: 2 * time.Minute, Timeout: 20 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.StatsHandler(&connLogger{s: s, port: port}),
		grpc.StatsHandler(&rpcMetrics{m: s.metrics, port: port}),
		grpc.ChainUnaryInterceptor(s.recoverUnary),
		grpc.ChainStreamInterceptor(s.recoverStream),
		grpc.ForceServerCodecV2(wire.NewCodec()),
	)
}

// Start listens on both ports and serves in the background. Use
// UntrustedAddr and AttestedAddr to learn the bound addresses (":0" picks a
// free port).
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.untrLis != nil || s.stopped {
		return errors.New("server: already started")
	}
	ul, err := net.Listen("tcp", s.cfg.UntrustedAddr)
	if err != nil {
		return fmt.Errorf("server: untrusted port: %w", err)
	}
	al, err := net.Listen("tcp", s.cfg.AttestedAddr)
	if err != nil {
		ul.Close()
		return fmt.Errorf("server: attested port: %w", err)
	}
	if s.cluster != nil {
		if err := s.startPeerPort(); err != nil {
			ul.Close()
			al.Close()
			return err
		}
	}
	s.untrLis, s.attLis = ul, al
	if err := s.startOps(); err != nil {
		ul.Close()
		al.Close()
		s.untrLis, s.attLis = nil, nil
		return err
	}
	s.serveErrs = make(chan error, 2)
	// Each port holds at most max_connections connections; the next ones
	// wait in the kernel's accept queue until one closes.
	ul = netutil.LimitListener(ul, s.cfg.MaxConnections)
	al = netutil.LimitListener(al, s.cfg.MaxConnections)
	go func() { s.serveErrs <- s.untrusted.Serve(ul) }()
	go func() { s.serveErrs <- s.attested.Serve(al) }()
	for i, f := range s.frontends {
		if err := f.Start(s.core); err != nil {
			for _, g := range s.frontends[:i] {
				g.Shutdown(context.Background())
			}
			s.untrusted.Stop()
			s.attested.Stop()
			return fmt.Errorf("server: %s: %w", f.Name(), err)
		}
	}
	go s.logTenants(s.stopLog)
	if s.cfg.Simulation {
		s.log.Warn(SimulationWarning)
	}
	if s.cfg.AuthMode() == AuthNone {
		s.log.Warn("authentication is off (auth = none): anyone who reaches the attested port can upload, run and delete any model")
	}
	s.logAuth()
	s.log.Info("serving", "untrusted", ul.Addr().String(), "attested", al.Addr().String(),
		"protocol_version", ProtocolVersion, "server_version", Version, "onnxruntime", s.rt.Version(),
		"attested_cert_sha256", identity.Fingerprint(s.id.DER))
	return nil
}

// Wait blocks until a port stops serving on its own (an error) or ctx ends.
func (s *Server) Wait(ctx context.Context) error {
	select {
	case err := <-s.serveErrs:
		if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("server: %w", err)
		}
		return nil
	case <-ctx.Done():
		return nil
	}
}

// UntrustedAddr returns the untrusted port's bound address.
func (s *Server) UntrustedAddr() string { return s.untrLis.Addr().String() }

// AttestedAddr returns the attested port's bound address.
func (s *Server) AttestedAddr() string { return s.attLis.Addr().String() }

// AttestedCertificateDER returns the DER of the attested port's certificate.
func (s *Server) AttestedCertificateDER() []byte { return s.id.DER }

// HostCertificateDER returns the DER of the untrusted port's certificate.
func (s *Server) HostCertificateDER() []byte { return s.hostDER }

// Shutdown stops accepting connections and RPCs, lets in-flight requests
// finish until ctx ends, then cuts the rest, and unloads every model.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	close(s.stopLog)
	s.mu.Unlock()
	s.stopOps()
	done := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); s.untrusted.GracefulStop() }()
		go func() { defer wg.Done(); s.attested.GracefulStop() }()
		for _, f := range s.frontends {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := f.Shutdown(ctx); err != nil {
					s.log.Warn("front end shutdown cut requests in flight", "frontend", f.Name(), "err", err)
				}
			}()
		}
		wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("shutdown deadline reached; cutting in-flight requests")
		s.untrusted.Stop()
		s.attested.Stop()
		<-done
		err = ctx.Err()
	}
	s.stopCluster()
	s.models.Close()
	s.closeOps()
	return err
}

// connLogger logs connections; in simulation mode it repeats the warning on
// every one.
type connLogger struct {
	s    *Server
	port string
}

func (c *connLogger) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (c *connLogger) HandleRPC(context.Context, stats.RPCStats)                       {}
func (c *connLogger) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	return context.WithValue(ctx, connKey{}, info.RemoteAddr)
}

type connKey struct{}

func (c *connLogger) HandleConn(ctx context.Context, st stats.ConnStats) {
	if _, ok := st.(*stats.ConnBegin); !ok {
		return
	}
	remote, _ := ctx.Value(connKey{}).(net.Addr)
	addr := ""
	if remote != nil {
		addr = remote.String()
	}
	if c.s.cfg.Simulation {
		c.s.log.Warn(SimulationWarning, "port", c.port, "remote", addr)
		return
	}
	c.s.log.Debug("connection", "port", c.port, "remote", addr)
}

// Usage returns how many models the server holds (in memory or evicted to
// sealed storage) and the bytes that models in memory, uploads and reloads
// in progress take against max_total_model_bytes.
func (s *Server) Usage() (models int, bytes int64) { return s.models.Usage() }
