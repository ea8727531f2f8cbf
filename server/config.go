package server

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/blindfold-ai/blindfold/engine"
)

// Config is the whole server configuration. It is read from one TOML file,
// then overridden by BLINDFOLD_* environment variables, then by flags; see
// Settings for every key.
type Config struct {
	// Simulation runs without a TEE. It protects nothing and must be chosen
	// explicitly.
	Simulation bool `toml:"simulation"`
	// TEE names the hardware evidence provider: "sgx-gramine" (SGX DCAP
	// quotes through Gramine's /dev/attestation), "tdx" or "sev-snp" (a
	// confidential VM's quotes or reports through configfs-tsm; see
	// docs/cvm.md). Empty: none, so the server starts only in simulation
	// (or with an Attester in Options).
	TEE string `toml:"tee"`
	// AttestationDir is Gramine's attestation folder (default
	// /dev/attestation).
	AttestationDir string `toml:"attestation_dir"`
	// PCCSURL is the base URL of the PCCS or Intel PCS that collateral is
	// fetched from (e.g. https://pccs.example:8081 or
	// https://api.trustedservices.intel.com).
	PCCSURL string `toml:"pccs_url"`
	// PCCSRootCACRLURL is where the root CA CRL is fetched. Empty: Intel's
	// CRL distribution point with Intel's PCS, else PCCSURL's
	// /sgx/certification/v4/rootcacrl.
	PCCSRootCACRLURL string `toml:"pccs_root_ca_crl_url"`
	// PCCSInsecureSkipVerify skips the TLS check of the PCCS's certificate
	// (PCCS installs often use a self-signed one). Collateral is signed by
	// Intel and verified by clients, so this risks availability, not trust.
	PCCSInsecureSkipVerify bool `toml:"pccs_insecure_skip_verify"`
	// PCCSHeader is one request header, "Name: value", sent with every
	// request to pccs_url: Azure's THIM behind the instance metadata
	// service needs "Metadata: true" (see docs/sgx.md).
	PCCSHeader string `toml:"pccs_header"`

	// UntrustedAddr is the listen address of the untrusted (attestation) port.
	UntrustedAddr string `toml:"untrusted_addr"`
	// AttestedAddr is the listen address of the attested (inference) port.
	AttestedAddr string `toml:"attested_addr"`
	// BlindAI06 also serves BlindAI 0.6's HTTP/CBOR protocol (package
	// server/blindai06) on three more ports, beside the gRPC ones: the same
	// models, limits, owners and sealing.
	BlindAI06 bool `toml:"blindai06"`
	// BlindAI06UnattestedAddr is the listen address of 0.6's unattested
	// HTTPS port (GET /, /quote, /collateral; operator certificate).
	BlindAI06UnattestedAddr string `toml:"blindai06_unattested_addr"`
	// BlindAI06AttestedAddr is the listen address of 0.6's attested HTTPS
	// port (POST /run; attested certificate).
	BlindAI06AttestedAddr string `toml:"blindai06_attested_addr"`
	// BlindAI06ManagementAddr is the listen address of 0.6's model
	// management HTTPS port (POST /upload, /delete; attested certificate).
	BlindAI06ManagementAddr string `toml:"blindai06_management_addr"`

	// StateDir holds the generated operator certificate and, later, sealed
	// models.
	StateDir string `toml:"state_dir"`
	// HostCert and HostKey are the operator's PEM certificate and key for the
	// untrusted port. Empty: use (and if needed generate) the pair in StateDir.
	HostCert string `toml:"host_cert"`
	HostKey  string `toml:"host_key"`

	// SealingKeyFile is the platform sealing key that protects saved models.
	// Empty: Gramine's /dev/attestation/keys/_sgx_mrenclave on SGX; in
	// simulation a key file in StateDir, generated on first start.
	SealingKeyFile string `toml:"sealing_key_file"`

	// OnnxRuntimeLib is the path of libonnxruntime.so.1. Empty: search the
	// usual places (see engine.FindLibrary).
	OnnxRuntimeLib string `toml:"onnxruntime_lib"`
	// IntraOpThreads sizes ONNX Runtime's intra-op thread pool, one pool
	// that every model shares (0: its default, one thread per core).
	IntraOpThreads int `toml:"intra_op_threads"`
	// InterOpThreads sizes ONNX Runtime's shared inter-op thread pool (0:
	// its default).
	InterOpThreads int `toml:"inter_op_threads"`
	// EngineSpinning lets ONNX Runtime's thread pools busy-wait between
	// operators (its default). Turning it off leaves idle cores to gRPC,
	// TLS and other runs.
	EngineSpinning bool `toml:"engine_spinning"`
	// EngineMemoryLimit caps ONNX Runtime's allocations (weights and
	// intermediate tensors of every model together); 0 means no cap.
	EngineMemoryLimit ByteSize `toml:"engine_memory_limit"`

	// WorkDir is the folder the server process works in: it must hold
	// nothing, so that no file is reachable by a relative path, and ONNX
	// Runtime is pointed at it for external data (which the engine
	// refuses anyway). It is made (mode 0700) if missing; a folder that
	// holds anything stops the start. Empty: StateDir/empty.
	WorkDir string `toml:"work_dir"`
	// MaxModelNodes caps a model's nodes, counting subgraphs and each call
	// of a model-local function as the nodes of its body; a larger model
	// is refused before ONNX Runtime parses it.
	MaxModelNodes int `toml:"max_model_nodes"`
	// MaxModelInitializers caps a model's initializers (dense and sparse,
	// in every graph); a model with more is refused before ONNX Runtime
	// parses it.
	MaxModelInitializers int `toml:"max_model_initializers"`
	// MaxConcurrentLoads caps the uploads that ONNX Runtime loads at
	// once; an upload whose model arrived waits up to LoadQueueTimeout for
	// a slot, then gets RESOURCE_EXHAUSTED.
	MaxConcurrentLoads int `toml:"max_concurrent_loads"`
	// LoadQueueTimeout is how long an upload waits for a load slot.
	LoadQueueTimeout Duration `toml:"load_queue_timeout"`

	// MaxModelBytes caps one model, counted on the bytes that arrive.
	MaxModelBytes ByteSize `toml:"max_model_bytes"`
	// MaxModels caps the models loaded in memory at once. Past it, the
	// least recently used idle saved models are evicted to sealed storage
	// (and reloaded on their next run); models that were not saved are
	// never evicted, so an upload that finds only those is refused.
	MaxModels int `toml:"max_models"`
	// MaxTotalModelBytes is the memory budget of loaded models: the bytes
	// of all models in memory together, uploads and reloads in progress
	// included. Past it, idle saved models are evicted as for MaxModels.
	// Default: half the machine's memory (at least 1GiB).
	MaxTotalModelBytes ByteSize `toml:"max_total_model_bytes"`
	// MaxStoredModels caps the models the server holds, in memory or
	// evicted to sealed storage.
	MaxStoredModels int `toml:"max_stored_models"`
	// TenantMaxModels caps the models one authenticated subject holds, in
	// memory or evicted; 0 means no cap. Without authentication it does
	// not apply.
	TenantMaxModels int `toml:"tenant_max_models"`
	// TenantMaxModelBytes caps the bytes of one authenticated subject's
	// models (in memory or evicted) and uploads in progress; 0 means half
	// of max_total_model_bytes. Without authentication it does not apply.
	TenantMaxModelBytes ByteSize `toml:"tenant_max_model_bytes"`
	// MaxInputBytes caps the input bytes of one RunModel call.
	MaxInputBytes ByteSize `toml:"max_input_bytes"`
	// MaxReplyBytes caps the output bytes of one RunModel reply. It is
	// checked before the engine allocates outputs whose size is known
	// before the run.
	MaxReplyBytes ByteSize `toml:"max_reply_bytes"`
	// MaxInflightInputBytes caps the input bytes that all RunModel calls
	// in progress hold together, server-wide. It is taken when a request
	// declares an input's shape, before any memory is allocated for it.
	MaxInflightInputBytes ByteSize `toml:"max_inflight_input_bytes"`
	// MaxMessageBytes caps one gRPC message (one chunk).
	MaxMessageBytes ByteSize `toml:"max_message_bytes"`
	// MaxConcurrentStreams caps the concurrent RPCs of one connection.
	MaxConcurrentStreams int `toml:"max_concurrent_streams"`
	// MaxConnections caps the open connections of each port; more wait to
	// be accepted until one closes.
	MaxConnections int `toml:"max_connections"`
	// HandshakeTimeout bounds a new connection's TLS handshake.
	HandshakeTimeout Duration `toml:"handshake_timeout"`
	// IdleTimeout closes a connection with no RPC for this long.
	IdleTimeout Duration `toml:"idle_timeout"`
	// StreamProgressTimeout cancels an upload or a run request whose
	// client sends nothing for this long before the stream ends,
	// releasing everything it held; 0 means never.
	StreamProgressTimeout Duration `toml:"stream_progress_timeout"`
	// MaxRunTime stops an inference inside ONNX Runtime after this long,
	// whatever the client's deadline; 0 means no limit.
	MaxRunTime Duration `toml:"max_run_time"`
	// ShutdownTimeout is how long in-flight requests may run after SIGTERM.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`

	// Auth is "required" (bearer JWTs on the attested port) or "none".
	// Empty means "required", except in simulation, where it means "none".
	Auth string `toml:"auth"`
	// AuthKeys are PEM files of the public keys (ECDSA P-256 for ES256,
	// Ed25519 for EdDSA) that may sign tokens.
	AuthKeys []string `toml:"auth_keys"`
	// AuthIssuer, if set, must equal a token's iss claim.
	AuthIssuer string `toml:"auth_issuer"`
	// AuthAudience, if set, must be in a token's aud claim.
	AuthAudience string `toml:"auth_audience"`
	// RateLimit is the sustained requests per second allowed to one subject
	// (0: unlimited); RateBurst is the burst above it.
	RateLimit float64 `toml:"rate_limit"`
	RateBurst int     `toml:"rate_burst"`
	// MaxConcurrentPerSubject caps one subject's requests in flight (0:
	// unlimited).
	MaxConcurrentPerSubject int `toml:"max_concurrent_per_subject"`
	// MaxConcurrentRuns caps inferences running at once, server-wide.
	MaxConcurrentRuns int `toml:"max_concurrent_runs"`
	// MaxRunsPerSubject caps the inferences one authenticated subject
	// runs at once, so that one tenant never holds every slot; 0 means
	// three quarters of max_concurrent_runs (at least 1). Each subject's
	// waiting runs queue apart, and a freed slot goes to the waiting
	// subject that holds the fewest. Without authentication every client
	// is the same subject and it does not apply.
	MaxRunsPerSubject int `toml:"max_runs_per_subject"`
	// RunQueueTimeout is how long a run waits for a free slot before it is
	// refused with RESOURCE_EXHAUSTED.
	RunQueueTimeout Duration `toml:"run_queue_timeout"`

	// Cluster makes this server a replica of a cluster that shares one
	// attested identity (see docs/cluster.md): "bootstrap" makes a new
	// cluster identity, "join" takes it from a peer in ClusterPeers (and
	// refuses to serve if none hands it over). Empty: a lone server.
	Cluster string `toml:"cluster"`
	// ClusterAddr is the listen address of the peer port, where replicas
	// hand the cluster identity to joiners that satisfy the cluster policy.
	ClusterAddr string `toml:"cluster_addr"`
	// ClusterPeers are the peer ports (host:port) a joining replica tries;
	// a name may resolve to several addresses (a Kubernetes headless
	// service).
	ClusterPeers []string `toml:"cluster_peers"`
	// ClusterInherit are the peer ports of an old cluster whose
	// model-sealing key a bootstrapping replica takes (joining it under
	// the same policy), so that a new attested identity is rolled out
	// over the same shared models (see docs/cluster.md, key rotation).
	ClusterInherit []string `toml:"cluster_inherit"`
	// ClusterJoinTimeout is how long a joining replica tries its peers
	// before it gives up and exits.
	ClusterJoinTimeout Duration `toml:"cluster_join_timeout"`
	// ClusterSecretFile holds the join secret of a simulation cluster
	// (at least 16 bytes; mode 0600). Simulation only.
	ClusterSecretFile string `toml:"cluster_secret_file"`
	// ClusterPolicy is the policy file (policy.toml) that a replica's
	// evidence must satisfy to join, on top of the same MRENCLAVE and
	// MRSIGNER as the peer's own. Hardware mode only.
	ClusterPolicy string `toml:"cluster_policy"`
	// ClusterModelsDir is the shared folder (a ReadWriteMany volume) that
	// holds every model of the cluster, sealed with the cluster key.
	ClusterModelsDir string `toml:"cluster_models_dir"`
	// Metrics turns on the metrics listener: Prometheus metrics on
	// /metrics and the health endpoints /healthz and /readyz, in plain
	// HTTP at MetricsAddr.
	Metrics bool `toml:"metrics"`
	// MetricsAddr is the metrics listener's address (default loopback
	// only, 127.0.0.1:9464).
	MetricsAddr string `toml:"metrics_addr"`
	// MetricsSubjectLabels adds per-subject series (label subject) to the
	// metrics. Off: no metric names a subject or a model.
	MetricsSubjectLabels bool `toml:"metrics_subject_labels"`

	// LogLevel is debug, info, warn or error.
	LogLevel string `toml:"log_level"`
	// LogFormat is text or json.
	LogFormat string `toml:"log_format"`
}

// DefaultConfig returns the defaults documented in docs/configuration.md.
func DefaultConfig() Config {
	return Config{
		UntrustedAddr:           "127.0.0.1:50052",
		AttestationDir:          "/dev/attestation",
		AttestedAddr:            "127.0.0.1:50051",
		BlindAI06UnattestedAddr: "127.0.0.1:9923",
		BlindAI06AttestedAddr:   "127.0.0.1:9924",
		BlindAI06ManagementAddr: "127.0.0.1:9925",
		StateDir:                defaultStateDir(),
		MaxModelBytes:           1 << 30,
		MaxModels:               256,
		MaxTotalModelBytes:      defaultModelMemory(),
		MaxStoredModels:         4096,
		TenantMaxModels:         256,
		MaxInputBytes:           256 << 20,
		MaxReplyBytes:           64 << 20,
		MaxInflightInputBytes:   1 << 30,
		StreamProgressTimeout:   Duration(30 * time.Second),
		MaxRunTime:              Duration(5 * time.Minute),
		MaxMessageBytes:         16 << 20,
		MaxConcurrentStreams:    256,
		MaxConnections:          1024,
		ShutdownTimeout:         Duration(30 * time.Second),
		HandshakeTimeout:        Duration(10 * time.Second),
		IdleTimeout:             Duration(15 * time.Minute),
		MaxConcurrentRuns:       2 * runtime.NumCPU(),
		EngineMemoryLimit:       defaultEngineMemoryLimit(),
		EngineSpinning:          true,
		RunQueueTimeout:         Duration(2 * time.Second),
		LogLevel:                "info",
		LogFormat:               "text",
		MaxModelNodes:           engine.DefaultMaxModelNodes,
		MaxModelInitializers:    engine.DefaultMaxModelInitializers,
		MaxConcurrentLoads:      max(1, runtime.NumCPU()/2),
		LoadQueueTimeout:        Duration(10 * time.Second),
		ClusterAddr:             "127.0.0.1:50053",
		ClusterJoinTimeout:      Duration(2 * time.Minute),
		MetricsAddr:             "127.0.0.1:9464",
	}
}

// defaultModelMemory is half the machine's memory, at least 1GiB, or 4GiB
// where /proc/meminfo cannot be read.
func defaultModelMemory() ByteSize {
	total := machineMemory()
	if total <= 0 {
		return 4 << 30
	}
	return max(1<<30, total/2&^(1<<20-1))
}

// defaultEngineMemoryLimit is three quarters of the machine's memory, or 0
// (no cap) where /proc/meminfo cannot be read.
func defaultEngineMemoryLimit() ByteSize {
	return machineMemory() / 4 * 3 &^ (1<<20 - 1)
}

// machineMemory returns the machine's memory, or 0 where it cannot be
// read.
func machineMemory() ByteSize { return ByteSize(engine.MachineMemory()) }

func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "blindfold")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "blindfold")
	}
	return "blindfold-state"
}

// Validate checks that every value is usable and says which is not.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config %s: %s", key, fmt.Sprintf(format, args...)))
	}
	switch c.TEE {
	case "":
	case TEESGXGramine:
		if c.Simulation {
			bad("tee", "%q and simulation exclude each other", c.TEE)
		}
		if c.PCCSURL == "" {
			bad("pccs_url", "tee = %q needs the PCCS (or Intel PCS) base URL that collateral is fetched from", c.TEE)
		}
		if c.AttestationDir == "" {
			bad("attestation_dir", "must not be empty with tee = %q", c.TEE)
		}
	case TEETDX, TEESNP:
		if c.Simulation {
			bad("tee", "%q and simulation exclude each other", c.TEE)
		}
		if c.TEE == TEETDX && c.PCCSURL == "" {
			bad("pccs_url", "tee = %q needs the PCCS (or Intel PCS) base URL that TDX collateral is fetched from", c.TEE)
		}
	default:
		bad("tee", "%q is not one of %q, %q, %q (or empty)", c.TEE, TEESGXGramine, TEETDX, TEESNP)
	}
	if c.PCCSHeader != "" {
		if _, _, err := c.pccsHeader(); err != nil {
			bad("pccs_header", "%v", err)
		}
	}
	if c.UntrustedAddr == "" {
		bad("untrusted_addr", "must not be empty")
	}
	if c.AttestedAddr == "" {
		bad("attested_addr", "must not be empty")
	}
	if c.BlindAI06 {
		for _, a := range []struct{ key, addr string }{{"blindai06_unattested_addr", c.BlindAI06UnattestedAddr}, {"blindai06_attested_addr", c.BlindAI06AttestedAddr}, {"blindai06_management_addr", c.BlindAI06ManagementAddr}} {
			if a.addr == "" {
				bad(a.key, "must not be empty with blindai06 = true")
			}
		}
	}
	if c.StateDir == "" {
		bad("state_dir", "must not be empty")
	}
	if (c.HostCert == "") != (c.HostKey == "") {
		bad("host_cert", "host_cert and host_key must be set together")
	}
	for _, p := range []struct {
		key string
		v   int64
	}{
		{"max_model_bytes", int64(c.MaxModelBytes)}, {"max_models", int64(c.MaxModels)},
		{"max_total_model_bytes", int64(c.MaxTotalModelBytes)}, {"max_input_bytes", int64(c.MaxInputBytes)},
		{"max_reply_bytes", int64(c.MaxReplyBytes)}, {"max_message_bytes", int64(c.MaxMessageBytes)},
		{"max_concurrent_streams", int64(c.MaxConcurrentStreams)},
		{"max_inflight_input_bytes", int64(c.MaxInflightInputBytes)},
		{"max_connections", int64(c.MaxConnections)}, {"max_stored_models", int64(c.MaxStoredModels)},
	} {
		if p.v <= 0 {
			bad(p.key, "must be positive, got %d", p.v)
		}
	}
	if c.MaxMessageBytes > 1<<30 {
		bad("max_message_bytes", "must be at most 1GiB, got %s", c.MaxMessageBytes)
	}
	if c.MaxReplyBytes > 2<<30-1<<20 {
		bad("max_reply_bytes", "must be below 2GiB (gRPC's message limit), got %s", c.MaxReplyBytes)
	}
	if c.MaxTotalModelBytes < c.MaxModelBytes {
		bad("max_total_model_bytes", "(%s) must be at least max_model_bytes (%s)", c.MaxTotalModelBytes, c.MaxModelBytes)
	}
	if c.EngineMemoryLimit < 0 {
		bad("engine_memory_limit", "must not be negative")
	}
	if c.IntraOpThreads < 0 || c.InterOpThreads < 0 {
		bad("intra_op_threads", "thread counts must be 0 (default) or positive")
	}
	if c.HandshakeTimeout <= 0 || c.IdleTimeout <= 0 {
		bad("handshake_timeout", "handshake_timeout and idle_timeout must be positive")
	}
	if c.ShutdownTimeout < 0 {
		bad("shutdown_timeout", "must not be negative")
	}
	if c.StreamProgressTimeout < 0 {
		bad("stream_progress_timeout", "must not be negative (0: none)")
	}
	if c.MaxRunTime < 0 {
		bad("max_run_time", "must not be negative (0: no limit)")
	}
	if c.MaxInflightInputBytes < c.MaxInputBytes {
		bad("max_inflight_input_bytes", "(%s) must be at least max_input_bytes (%s)", c.MaxInflightInputBytes, c.MaxInputBytes)
	}
	if c.TenantMaxModels < 0 {
		bad("tenant_max_models", "must not be negative (0: no cap)")
	}
	if c.TenantMaxModelBytes < 0 {
		bad("tenant_max_model_bytes", "must not be negative (0: half of max_total_model_bytes)")
	}
	if c.MaxRunsPerSubject < 0 {
		bad("max_runs_per_subject", "must not be negative (0: three quarters of max_concurrent_runs)")
	}
	switch c.Auth {
	case "", AuthRequired, AuthNone:
	default:
		bad("auth", "%q is not one of required, none", c.Auth)
	}
	if c.AuthMode() == AuthRequired && len(c.AuthKeys) == 0 {
		bad("auth_keys", "auth is required but no public keys are configured; give auth_keys, or set auth = \"none\" to let anyone who reaches the port use it")
	}
	if c.RateLimit < 0 || c.RateBurst < 0 || c.MaxConcurrentPerSubject < 0 {
		bad("rate_limit", "rate_limit, rate_burst and max_concurrent_per_subject must not be negative")
	}
	if c.MaxConcurrentRuns <= 0 {
		bad("max_concurrent_runs", "must be positive, got %d", c.MaxConcurrentRuns)
	}
	if c.RunQueueTimeout < 0 {
		bad("run_queue_timeout", "must not be negative")
	}
	if c.MaxModelNodes <= 0 {
		bad("max_model_nodes", "must be positive, got %d", c.MaxModelNodes)
	}
	if c.MaxModelInitializers <= 0 {
		bad("max_model_initializers", "must be positive, got %d", c.MaxModelInitializers)
	}
	if c.MaxConcurrentLoads <= 0 {
		bad("max_concurrent_loads", "must be positive, got %d", c.MaxConcurrentLoads)
	}
	if c.LoadQueueTimeout < 0 {
		bad("load_queue_timeout", "must not be negative")
	}
	c.validateCluster(bad)
	if c.Metrics && c.MetricsAddr == "" {
		bad("metrics_addr", "must not be empty when metrics are on")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		bad("log_format", "%q is not one of text, json", c.LogFormat)
	}
	return errors.Join(errs...)
}

// TEESGXGramine is the tee setting for SGX DCAP evidence through Gramine.
const TEESGXGramine = "sgx-gramine"

// Authentication modes.
const (
	AuthRequired = "required"
	AuthNone     = "none"
)

// AuthMode returns the effective authentication mode: Auth if set, else
// "none" in simulation and "required" otherwise.
func (c *Config) AuthMode() string {
	switch {
	case c.Auth != "":
		return c.Auth
	case c.Simulation:
		return AuthNone
	default:
		return AuthRequired
	}
}

// Setting describes one configuration key: its TOML key, environment
// variable and flag.
type Setting struct {
	Key   string // TOML key, e.g. "max_model_bytes"
	Env   string // environment variable, e.g. "BLINDFOLD_MAX_MODEL_BYTES"
	Flag  string // flag name, e.g. "max-model-bytes"
	Usage string // one line of help
	// Type names the value's kind: bool, string, int, number, size
	// (bytes, or with a unit such as 512MiB), duration (30s, 2m) or list
	// (comma-separated in flags and the environment, an array in TOML).
	Type string
	// Default is the default value as text ("" when empty).
	Default string
}

var settingUsage = map[string]string{
	"cluster":                    "replica of a cluster with one attested identity: bootstrap (make a new one), join (take it from cluster_peers), or join-or-bootstrap (join, or bootstrap when no peer answers at all: for one replica of a set); empty: a lone server",
	"cluster_addr":               "listen address of the peer port, where joiners that satisfy the cluster policy get the cluster identity",
	"cluster_peers":              "comma-separated peer ports (host:port) a joining replica tries; a name may resolve to several replicas",
	"cluster_inherit":            "bootstrap only: comma-separated peer ports of an old cluster whose model-sealing key the new identity keeps (key rotation)",
	"cluster_join_timeout":       "how long a joining replica tries its peers before it exits without serving",
	"cluster_secret_file":        "file holding the join secret of a simulation cluster (INSECURE: whoever reads it can join)",
	"cluster_policy":             "policy file a joining replica's evidence must satisfy (hardware mode), on top of the same MRENCLAVE and MRSIGNER",
	"cluster_models_dir":         "shared folder (ReadWriteMany volume) holding every model of the cluster, sealed with the cluster key",
	"simulation":                 "run WITHOUT a TEE (INSECURE: protects nothing; for development only)",
	"tee":                        "hardware evidence provider: sgx-gramine (SGX DCAP quotes through Gramine's /dev/attestation), tdx or sev-snp (confidential VM evidence through configfs-tsm)",
	"attestation_dir":            "Gramine's attestation folder",
	"pccs_url":                   "base URL of the PCCS or Intel PCS that SGX collateral is fetched from",
	"pccs_root_ca_crl_url":       "URL of the SGX root CA CRL (default: Intel's distribution point with Intel PCS, else the PCCS's rootcacrl)",
	"pccs_insecure_skip_verify":  "INSECURE: do not check the PCCS's TLS certificate (collateral is still verified by clients)",
	"pccs_header":                "a request header (Name: value) sent to pccs_url, e.g. Metadata: true for Azure's THIM",
	"untrusted_addr":             "listen address of the untrusted (attestation) port",
	"attested_addr":              "listen address of the attested (inference) port",
	"blindai06":                  "also serve BlindAI 0.6's HTTP/CBOR protocol on three more ports (the same models, limits and owners)",
	"blindai06_unattested_addr":  "listen address of BlindAI 0.6's unattested HTTPS port (certificate, quote, collateral)",
	"blindai06_attested_addr":    "listen address of BlindAI 0.6's attested HTTPS port (run)",
	"blindai06_management_addr":  "listen address of BlindAI 0.6's model management HTTPS port (upload, delete)",
	"state_dir":                  "folder for the generated operator certificate and server state",
	"host_cert":                  "operator TLS certificate (PEM) for the untrusted port",
	"host_key":                   "operator TLS key (PEM) for the untrusted port",
	"sealing_key_file":           "platform sealing key for saved models (default: Gramine's MRENCLAVE key; in simulation a generated key file in state_dir)",
	"onnxruntime_lib":            "path of libonnxruntime.so.1 (default: search the usual places)",
	"intra_op_threads":           "threads of ONNX Runtime's intra-op pool, shared by every model (0: its default, one per core)",
	"inter_op_threads":           "threads of ONNX Runtime's inter-op pool, shared by every model (0: its default)",
	"engine_memory_limit":        "cap on ONNX Runtime memory for all models, weights and intermediate tensors (0: none; default: 3/4 of RAM)",
	"engine_spinning":            "let ONNX Runtime threads busy-wait for work (true, its default) or sleep (false)",
	"max_model_bytes":            "largest model accepted, counted on bytes received (e.g. 1GiB)",
	"max_models":                 "most models loaded in memory at once; past it idle saved models are evicted to sealed storage",
	"max_total_model_bytes":      "memory budget of loaded models, uploads in progress included; past it idle saved models are evicted (default: half the RAM, at least 1GiB)",
	"max_stored_models":          "most models held, in memory or evicted to sealed storage",
	"tenant_max_models":          "most models one authenticated subject holds, in memory or evicted (0: no cap)",
	"tenant_max_model_bytes":     "most bytes of one authenticated subject's models and uploads (0: half of max_total_model_bytes)",
	"max_input_bytes":            "most input bytes of one RunModel call",
	"max_reply_bytes":            "most output bytes of one RunModel reply (checked before outputs are allocated where their size is known)",
	"max_inflight_input_bytes":   "most input bytes held by all RunModel calls in progress together, server-wide",
	"stream_progress_timeout":    "cancel an upload or run whose client sends nothing for this long (0: never)",
	"max_run_time":               "stop an inference after this long, whatever the client's deadline (0: no limit)",
	"max_runs_per_subject":       "inferences one authenticated subject may run at once; subjects queue apart and share slots fairly (0: three quarters of max_concurrent_runs)",
	"max_message_bytes":          "largest single gRPC message (one chunk)",
	"max_concurrent_streams":     "most concurrent RPCs on one connection",
	"max_connections":            "most open connections on each port; more wait to be accepted",
	"shutdown_timeout":           "how long in-flight requests may finish after SIGTERM (e.g. 30s)",
	"handshake_timeout":          "time limit for a new connection's TLS handshake (e.g. 10s)",
	"idle_timeout":               "close connections that carry no RPC for this long (e.g. 15m)",
	"auth":                       "bearer-token authentication on the attested port: required or none (default: required; none in simulation)",
	"auth_keys":                  "comma-separated PEM files of token-signing public keys (ES256 or EdDSA)",
	"auth_issuer":                "required iss claim of tokens (optional)",
	"auth_audience":              "required aud claim of tokens (optional)",
	"rate_limit":                 "requests per second allowed to one subject (0: unlimited)",
	"rate_burst":                 "burst of requests allowed to one subject above rate_limit",
	"max_concurrent_per_subject": "requests of any kind one subject may have in flight (0: unlimited)",
	"max_concurrent_runs":        "inferences running at once, server-wide (default: twice the CPU count)",
	"run_queue_timeout":          "how long a run waits for a free inference slot before RESOURCE_EXHAUSTED",
	"work_dir":                   "empty folder the server process works in and points ONNX Runtime at (default: state_dir/empty)",
	"max_model_nodes":            "most nodes in one model, subgraphs included and each local-function call counted as its body's nodes",
	"max_model_initializers":     "most initializers in one model, dense and sparse, subgraphs included",
	"max_concurrent_loads":       "models ONNX Runtime loads at once, server-wide (default: half the CPU count, at least 1)",
	"load_queue_timeout":         "how long an upload waits for a load slot before RESOURCE_EXHAUSTED",
	"metrics":                    "serve Prometheus metrics (/metrics) and health endpoints (/healthz, /readyz) in plain HTTP on metrics_addr",
	"metrics_addr":               "listen address of the metrics and health endpoints (default loopback only)",
	"metrics_subject_labels":     "add per-subject series (label subject) to the metrics; off, no metric names a subject or a model",
	"log_level":                  "log level: debug, info, warn, error",
	"log_format":                 "log format: text or json",
}

// fields returns the settable fields of c by TOML key.
func (c *Config) fields() map[string]reflect.Value {
	out := map[string]reflect.Value{}
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if key := t.Field(i).Tag.Get("toml"); key != "" {
			out[key] = v.Field(i)
		}
	}
	return out
}

// Settings lists every configuration key with its environment variable and
// flag, sorted by key.
func Settings() []Setting {
	c := DefaultConfig()
	var out []Setting
	for key, f := range c.fields() {
		out = append(out, Setting{
			Key:     key,
			Env:     "BLINDFOLD_" + strings.ToUpper(key),
			Flag:    strings.ReplaceAll(key, "_", "-"),
			Usage:   settingUsage[key],
			Type:    settingType(f),
			Default: settingText(f),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// settingType names the kind of a setting's field (see Setting.Type).
func settingType(f reflect.Value) string {
	switch f.Addr().Interface().(type) {
	case *bool:
		return "bool"
	case *int:
		return "int"
	case *float64:
		return "number"
	case *ByteSize:
		return "size"
	case *Duration:
		return "duration"
	case *[]string:
		return "list"
	}
	return "string"
}

// settingText formats a setting's value ("" for a zero value that means
// "unset").
func settingText(f reflect.Value) string {
	switch v := f.Interface().(type) {
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case []string:
		return strings.Join(v, ",")
	case ByteSize:
		return v.String()
	case Duration:
		return v.String()
	}
	return fmt.Sprint(f.Interface())
}

// setField parses s into the field for key.
func setField(f reflect.Value, s string) error {
	switch p := f.Addr().Interface().(type) {
	case *string:
		*p = s
	case *bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not a boolean (true or false)", s)
		}
		*p = b
	case *int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		*p = n
	case *ByteSize:
		return p.UnmarshalText([]byte(s))
	case *Duration:
		return p.UnmarshalText([]byte(s))
	case *float64:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		*p = v
	case *[]string:
		*p = nil
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				*p = append(*p, part)
			}
		}
	default:
		return fmt.Errorf("unsupported setting type %s", f.Type())
	}
	return nil
}

// LoadConfig returns the defaults, overridden by the TOML file at path (if
// path is not empty), then by environment variables read through getenv
// (os.LookupEnv in production). Unknown TOML keys are an error.
func LoadConfig(path string, getenv func(string) (string, bool)) (Config, error) {
	c := DefaultConfig()
	if path != "" {
		md, err := toml.DecodeFile(path, &c)
		if err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			var problems []string
			for _, k := range und {
				problems = append(problems, unknownKey(k.String()))
			}
			return Config{}, fmt.Errorf("config file %s: %s (every key is listed in docs/configuration.md and by blindfold-server --help)", path, strings.Join(problems, "; "))
		}
		// Paths written in the file mean what they say next to the file,
		// wherever the server is started from.
		dir, err := filepath.Abs(filepath.Dir(path))
		if err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
		for key, p := range c.pathSettings() {
			for _, q := range p {
				if md.IsDefined(key) && *q != "" && !filepath.IsAbs(*q) {
					*q = filepath.Join(dir, *q)
				}
			}
		}
	}
	if getenv != nil {
		fields := c.fields()
		for _, s := range Settings() {
			if v, ok := getenv(s.Env); ok {
				if err := setField(fields[s.Key], v); err != nil {
					return Config{}, fmt.Errorf("environment %s: %w", s.Env, err)
				}
			}
		}
	}
	return c, nil
}

// unknownKey words an unknown TOML key, with the closest known key when
// one is close enough to be a likely typo.
func unknownKey(key string) string {
	leaf := key
	if i := strings.LastIndex(key, "."); i >= 0 {
		leaf = key[i+1:]
	}
	best, bestDist := "", 1<<30
	for _, s := range Settings() {
		if d := editDistance(leaf, s.Key); d < bestDist {
			best, bestDist = s.Key, d
		}
	}
	if bestDist <= max(2, len(leaf)/3) && best != key {
		return fmt.Sprintf("unknown key %q (did you mean %q?)", key, best)
	}
	return fmt.Sprintf("unknown key %q", key)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// settingFlag is the flag.Value of a setting: it checks the value as the
// setting's type when given, and keeps the text for ApplyFlags.
type settingFlag struct {
	text    string
	kind    string
	boolean bool
	check   func(string) error
}

func (f *settingFlag) String() string {
	if f == nil {
		return ""
	}
	return f.text
}

func (f *settingFlag) Set(s string) error {
	if err := f.check(s); err != nil {
		return err
	}
	f.text = s
	return nil
}

// IsBoolFlag lets boolean settings be given as a bare --flag.
func (f *settingFlag) IsBoolFlag() bool { return f.boolean }

// Type names the setting's kind for help.
func (f *settingFlag) Type() string { return f.kind }

// RegisterFlags defines one flag per setting on fs. After fs.Parse, call
// ApplyFlags to copy the flags that were given into a Config.
func RegisterFlags(fs *flag.FlagSet) {
	for _, s := range Settings() {
		key := s.Key
		check := func(v string) error {
			c := DefaultConfig()
			return setField(c.fields()[key], v)
		}
		fs.Var(&settingFlag{text: s.Default, kind: s.Type, boolean: s.Type == "bool", check: check}, s.Flag, s.Usage)
	}
}

// ApplyFlags copies the flags set on fs (see RegisterFlags) into c.
func ApplyFlags(fs *flag.FlagSet, c *Config) error {
	fields := c.fields()
	byFlag := map[string]string{}
	for _, s := range Settings() {
		byFlag[s.Flag] = s.Key
	}
	var err error
	fs.Visit(func(f *flag.Flag) {
		key, ok := byFlag[f.Name]
		if !ok || err != nil {
			return
		}
		if e := setField(fields[key], f.Value.String()); e != nil {
			err = fmt.Errorf("flag --%s: %w", f.Name, e)
		}
	})
	return err
}

// ByteSize is a number of bytes. In TOML, environment and flags it is a
// whole number of bytes or a number with a unit: B, KiB, MiB, GiB, TiB
// (also KB, MB, GB as decimal units).
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12}, {"b", 1},
}

// UnmarshalText parses "1048576", "512MiB", "1GiB" and the like.
func (b *ByteSize) UnmarshalText(text []byte) error {
	s := strings.ToLower(strings.TrimSpace(string(text)))
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("%q is not a size (use bytes or a unit: KiB, MiB, GiB)", string(text))
	}
	if n > (1<<62)/mult {
		return fmt.Errorf("%q is too large", string(text))
	}
	*b = ByteSize(n * mult)
	return nil
}

// UnmarshalTOML accepts a TOML integer (bytes) or string ("1GiB").
func (b *ByteSize) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return fmt.Errorf("size %d is negative", x)
		}
		*b = ByteSize(x)
		return nil
	case string:
		return b.UnmarshalText([]byte(x))
	default:
		return fmt.Errorf("size must be an integer or a string like \"1GiB\", got %T", v)
	}
}

// String formats b with the largest binary unit that divides it.
func (b ByteSize) String() string {
	for _, u := range []struct {
		s string
		m int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.m == 0 {
			return fmt.Sprintf("%d%s", int64(b)/u.m, u.s)
		}
	}
	return fmt.Sprintf("%dB", int64(b))
}

// Duration is a time.Duration written as "30s", "2m" and the like.
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(text)))
	if err != nil {
		return fmt.Errorf("%q is not a duration (e.g. 30s, 2m)", string(text))
	}
	*d = Duration(v)
	return nil
}

// String formats d as a Go duration.
func (d Duration) String() string { return time.Duration(d).String() }

// TenantModelBytes returns the effective tenant_max_model_bytes.
func (c *Config) TenantModelBytes() ByteSize {
	if c.TenantMaxModelBytes > 0 {
		return c.TenantMaxModelBytes
	}
	return c.MaxTotalModelBytes / 2
}

// RunsPerSubject returns the effective max_runs_per_subject.
func (c *Config) RunsPerSubject() int {
	if c.MaxRunsPerSubject > 0 {
		return min(c.MaxRunsPerSubject, c.MaxConcurrentRuns)
	}
	return max(1, c.MaxConcurrentRuns*3/4)
}

// WorkDirectory returns the effective work_dir: WorkDir, or StateDir/empty.
func (c *Config) WorkDirectory() string {
	if c.WorkDir != "" {
		return c.WorkDir
	}
	return filepath.Join(c.StateDir, "empty")
}

// pathSettings returns the settings that name files or folders, by TOML
// key.
func (c *Config) pathSettings() map[string][]*string {
	m := map[string][]*string{
		"state_dir": {&c.StateDir}, "work_dir": {&c.WorkDir}, "host_cert": {&c.HostCert}, "host_key": {&c.HostKey},
		"sealing_key_file": {&c.SealingKeyFile}, "onnxruntime_lib": {&c.OnnxRuntimeLib}, "attestation_dir": {&c.AttestationDir},
		"cluster_secret_file": {&c.ClusterSecretFile}, "cluster_policy": {&c.ClusterPolicy}, "cluster_models_dir": {&c.ClusterModelsDir},
	}
	for i := range c.AuthKeys {
		m["auth_keys"] = append(m["auth_keys"], &c.AuthKeys[i])
	}
	return m
}

// MakePathsAbsolute resolves every relative path setting against the
// current folder, so that the settings keep their meaning after the
// process moves into its work folder. Paths from a configuration file
// were already resolved against the file's folder by LoadConfig; those
// left relative come from the environment or flags.
func (c *Config) MakePathsAbsolute() error {
	var paths []*string
	for _, p := range c.pathSettings() {
		paths = append(paths, p...)
	}
	for _, p := range paths {
		if *p == "" || filepath.IsAbs(*p) {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return fmt.Errorf("config: making %s absolute: %w", *p, err)
		}
		*p = abs
	}
	return nil
}

// PrepareWorkDir makes the work folder (mode 0700) if it is missing and
// checks that it is a folder that holds nothing and that others cannot
// write to. It returns its absolute path.
func PrepareWorkDir(c *Config) (string, error) {
	dir, err := filepath.Abs(c.WorkDirectory())
	if err != nil {
		return "", fmt.Errorf("work_dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("work_dir: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("work_dir: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("work_dir %s is not a folder", dir)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return "", fmt.Errorf("work_dir %s can be written by others (mode %v); make it 0700", dir, fi.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("work_dir: %w", err)
	}
	if len(entries) > 0 {
		return "", fmt.Errorf("work_dir %s must be empty, but holds %q (and %d more); the server works there so that no file is reachable by a relative path", dir, entries[0].Name(), len(entries)-1)
	}
	return dir, nil
}

// Cluster roles.
const (
	ClusterBootstrap = "bootstrap"
	ClusterJoin      = "join"
	// ClusterJoinOrBootstrap joins like ClusterJoin, and bootstraps a new
	// identity only when no peer answered at all for cluster_join_timeout
	// (never after a refusal). Give it to ONE replica of a set, such as
	// the first pod of a StatefulSet (deploy/kubernetes), so that a set
	// started from nothing forms one cluster and a restarted first
	// replica rejoins the others.
	ClusterJoinOrBootstrap = "join-or-bootstrap"
)

// validateCluster checks the cluster settings.
func (c *Config) validateCluster(bad func(key, format string, args ...any)) {
	switch c.Cluster {
	case "":
		return
	case ClusterBootstrap, ClusterJoin, ClusterJoinOrBootstrap:
	default:
		bad("cluster", "%q is not one of %q, %q, %q (or empty)", c.Cluster, ClusterBootstrap, ClusterJoin, ClusterJoinOrBootstrap)
		return
	}
	if c.ClusterAddr == "" {
		bad("cluster_addr", "must not be empty with cluster = %q", c.Cluster)
	}
	if c.ClusterModelsDir == "" {
		bad("cluster_models_dir", "cluster = %q needs the shared folder that holds the cluster's models", c.Cluster)
	}
	if c.Cluster != ClusterBootstrap && len(c.ClusterPeers) == 0 {
		bad("cluster_peers", "cluster = %q needs at least one peer to join", c.Cluster)
	}
	if c.Cluster != ClusterBootstrap && len(c.ClusterInherit) > 0 {
		bad("cluster_inherit", "only a bootstrapping replica inherits the sealing key of an old cluster; joiners take the new cluster's")
	}
	if c.ClusterJoinTimeout <= 0 {
		bad("cluster_join_timeout", "must be positive")
	}
	if c.Simulation {
		if c.ClusterSecretFile == "" {
			bad("cluster_secret_file", "a simulation cluster needs a join secret file")
		}
		if c.ClusterPolicy != "" {
			bad("cluster_policy", "has no meaning in simulation (replicas trust each other by the join secret)")
		}
	} else {
		if c.ClusterPolicy == "" {
			bad("cluster_policy", "a hardware cluster needs the policy file that joining replicas must satisfy")
		}
		if c.ClusterSecretFile != "" {
			bad("cluster_secret_file", "is for simulation only; hardware replicas prove themselves with evidence")
		}
	}
}
