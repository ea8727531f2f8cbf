// Package client is the Go client of a Blindfold server. It speaks the
// BlindAI 0.5 wire protocol, so it also talks to BlindAI 0.5 servers.
//
// Connect follows the protocol's sequence: it reaches the untrusted port
// over TLS (trusting the operator's certificate, or, explicitly and loudly,
// whatever certificate it sees first), reads the server information and
// checks the protocol version, obtains the attestation material, and opens
// the attested port with the attested certificate as the only trusted root.
// Requests to upload, run and delete models then go over the attested
// channel; replies may be signed by the TEE's key and turned into proof
// files (package proof).
//
// Hardware mode (WithPolicy): Connect fetches the server's SGX DCAP
// evidence (BlindAI's GetSgxQuoteWithCollateral, or, with WithNonce,
// Blindfold's GetEvidence bound to the nonce), verifies the quote and its
// collateral against the pinned Intel SGX Root CA, checks the enclave
// against the policy and that the report data binds the attested
// certificate (and nonce), and only then opens the attested port pinning
// exactly that certificate. Errors: ErrBadEvidence, ErrStaleCollateral,
// ErrPolicyMismatch. A server offering evidence to a client without a
// policy is refused (ErrNoPolicy).
//
// A simulation-mode server is accepted only with WithSimulation (otherwise
// ErrSimulationServer). Simulation protects nothing: the server is not in
// a TEE and its operator sees everything. A client given a policy never
// accepts a simulation server: WithPolicy and WithSimulation together are a
// usage error (ErrUsage), so no server can downgrade such a client to
// simulation by refusing to attest.
//
// Errors from the server keep their gRPC status: use status.Code(err).
package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/api/untrusted"
	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/collateral"
	"github.com/blindfold-ai/blindfold/identity"
	"github.com/blindfold-ai/blindfold/internal/wire"
	"github.com/blindfold-ai/blindfold/policy"
)

// Version is the version of this client library, sent to servers as
// telemetry (ClientInfo.user_agent_version).
const Version = "0.1.0"

// ProtocolVersion is the wire-protocol version this client speaks; it
// accepts servers of any 0.5.x version.
const ProtocolVersion = "0.5.0"

// UserAgent is the user agent sent to servers (ClientInfo.user_agent).
const UserAgent = "blindfold-go"

// Protocol defaults.
const (
	// DefaultUntrustedPort is the untrusted (attestation) port.
	DefaultUntrustedPort = 50052
	// DefaultAttestedPort is the attested (model exchange) port.
	DefaultAttestedPort = 50051
	// DefaultMaxReceiveBytes is the largest reply accepted: 8 MiB, as the
	// protocol's reference client.
	DefaultMaxReceiveBytes = 8 << 20
	// DefaultChunkSize is the size of the pieces that models and inputs are
	// sent in: 256 KiB, well under the server's default message limit
	// (BlindAI clients send 32 KiB; larger pieces cost fewer messages).
	DefaultChunkSize = 256 << 10
)

// Errors of Connect. Use errors.Is.
var (
	// ErrSimulationServer means the server runs in simulation mode and
	// the caller did not pass WithSimulation.
	ErrSimulationServer = errors.New("client: server runs in simulation mode; pass WithSimulation to accept it (it protects nothing)")
	// ErrNoPolicy means the server offers hardware evidence (a quote or report)
	// and no policy was given to verify it against (WithPolicy).
	ErrNoPolicy = fmt.Errorf("client: the server offers hardware evidence (an SGX, TDX or SEV-SNP quote or report): %w; pass WithPolicy with the TEE's policy.toml", attest.ErrNoPolicy)
	// ErrBadEvidence means the server's evidence does not verify: quote,
	// signatures, certificate chain to the pinned root, revocation, or a
	// report data that does not bind the attested certificate or nonce.
	// The cause (often an *sgx.Error) is wrapped.
	ErrBadEvidence = attest.ErrBadEvidence
	// ErrStaleCollateral means the evidence's collateral is expired, not
	// yet valid, or older than the policy allows. It also matches
	// ErrBadEvidence.
	ErrStaleCollateral = attest.ErrStaleCollateral
	// ErrPolicyMismatch means the evidence verifies but the enclave does not
	// satisfy the policy; the *policy.MismatchError is wrapped.
	ErrPolicyMismatch = attest.ErrPolicyMismatch
	// ErrNoNonceSupport means WithNonce was given but the server does not
	// offer blindfold.v1.Evidence/GetEvidence.
	ErrNoNonceSupport = errors.New("client: the server does not offer evidence bound to a nonce (blindfold.v1.Evidence/GetEvidence); connect without WithNonce")
	// ErrUsage means the options contradict each other (WithPolicy with
	// WithSimulation); Connect returns it before dialing.
	ErrUsage = errors.New("client: invalid options")
	// ErrNoTrust means no way to trust the untrusted port was given.
	ErrNoTrust = errors.New("client: no trust for the untrusted port: pass WithHostCertificate/WithHostCertificateFile (the operator's host_server.pem), or WithInsecureTrustOnFirstUse")
	// ErrIncompatibleVersion means the server's protocol version is not
	// 0.5.x.
	ErrIncompatibleVersion = errors.New("client: incompatible server protocol version")
	// ErrTrust means a certificate could not be trusted: the untrusted
	// port's certificate changed after first use, or the attested
	// certificate is malformed or lacks the signing key.
	ErrTrust = errors.New("client: trust check failed")
	// ErrVerification means a signed reply did not verify: bad signature,
	// or a hash or model id that differs from what was sent.
	ErrVerification = errors.New("client: signed reply verification failed")
)

// StepAttestedPort is the ConnectError.Step of a failure to open the
// attested port (the untrusted port answered).
const StepAttestedPort = "attested port"

// ConnectError is returned by Connect when a step of the connection fails.
// It wraps the cause, so status.Code and errors.Is see through it.
type ConnectError struct {
	// Step names what failed ("GetServerInfo", "attested port", ...).
	Step string
	// Addr is the address it was talking to.
	Addr string
	// Err is the cause.
	Err error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("client: connecting to %s: %s: %v", e.Addr, e.Step, e.Err)
}

// Unwrap returns the cause.
func (e *ConnectError) Unwrap() error { return e.Err }

// Option configures Connect.
type Option func(*config)

type config struct {
	hostCert     []byte
	hostCertPath string
	hostCertFP   []byte // SHA-256 of the pinned certificate's DER
	hostCertFPIn string // as given, for errors
	tofu         bool
	simulation   bool
	attestedPort int
	portGiven    bool // WithAttestedPort was given
	maxRecv      int
	logger       *slog.Logger
	token        string
	policy       *policy.Policy
	now          func() time.Time
	testRoot     *x509.Certificate
	nonce        []byte
	verifiers    *attest.Registry
	bundle       *collateral.Bundle
}

// WithPolicy verifies the server's hardware evidence and holds the enclave
// to p (policy.Load reads a policy.toml or a BlindAI 0.6 manifest.toml).
// Without it, Connect refuses a server that offers hardware evidence.
func WithPolicy(p *policy.Policy) Option { return func(c *config) { c.policy = p } }

// WithTime sets the clock used to verify evidence (certificate and
// collateral validity); the default is time.Now.
func WithTime(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithTestRootCA replaces the pinned Intel SGX Root CA with root, for SGX
// and TDX evidence. FOR TESTS ONLY: evidence that chains to a test root
// proves nothing about hardware.
func WithTestRootCA(root *x509.Certificate) Option { return func(c *config) { c.testRoot = root } }

// WithNonce asks for evidence bound to nonce (1 to 64 bytes, e.g. 32 random
// bytes): Connect then uses blindfold.v1.Evidence/GetEvidence and checks
// that bytes 32..63 of the report data are SHA-256(nonce), so replayed
// evidence is refused. Servers without that RPC (BlindAI) are refused with
// ErrNoNonceSupport.
func WithNonce(nonce []byte) Option {
	return func(c *config) { c.nonce = append([]byte(nil), nonce...) }
}

// WithHostCertificate trusts the given operator certificate (host_server.pem
// contents, as PEM or DER) for the untrusted port.
func WithHostCertificate(pemOrDER []byte) Option {
	return func(c *config) { c.hostCert = append([]byte(nil), pemOrDER...) }
}

// WithHostCertificateFile trusts the operator certificate in the PEM (or
// DER) file at path for the untrusted port. Connect reads the file.
func WithHostCertificateFile(path string) Option {
	return func(c *config) { c.hostCertPath = path }
}

// WithHostCertificateFingerprint trusts, for the untrusted port, exactly
// the certificate whose DER has this SHA-256 fingerprint (hex, with or
// without colons, as Client.HostCertificateFingerprint and "openssl x509
// -fingerprint -sha256" print it). Connect refuses a malformed
// fingerprint.
func WithHostCertificateFingerprint(sha256Hex string) Option {
	return func(c *config) {
		c.hostCertFPIn = sha256Hex
		b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(sha256Hex), ":", ""))
		if err != nil || len(b) != sha256.Size {
			b = []byte{} // malformed: refused by Connect
		}
		c.hostCertFP = b
	}
}

// HostCertificateError means the untrusted port presented a certificate
// other than the one the client was told to trust. It names both
// fingerprints; a certificate that carries Blindfold's signing-key
// extension is an attested certificate, which means the address names the
// attested port instead of the untrusted one.
type HostCertificateError struct {
	// Presented is the SHA-256 fingerprint of the certificate the port
	// presented.
	Presented string
	// Expected is the fingerprint of the certificate trusted (from the
	// file, bytes or fingerprint given).
	Expected string
	// Source says where Expected came from (a file name, "the certificate
	// given" or "the fingerprint given").
	Source string
	// AttestedPort is true when the presented certificate is an attested
	// certificate: the address names the attested port.
	AttestedPort bool
}

func (e *HostCertificateError) Error() string {
	msg := fmt.Sprintf("the untrusted port's certificate has SHA-256 fingerprint %s, but %s has %s", e.Presented, e.Source, e.Expected)
	if e.AttestedPort {
		msg += "; that certificate is an attested one: the address names the attested port, not the untrusted port (default 50052)"
	}
	return msg
}

// Unwrap makes the error match ErrTrust.
func (e *HostCertificateError) Unwrap() error { return ErrTrust }

// WithInsecureTrustOnFirstUse accepts whatever certificate the untrusted
// port presents first, logs a warning with its fingerprint, and refuses a
// different one later in the Client's life. The untrusted port carries no
// secrets, and in hardware mode trust comes from the verified evidence;
// without a policy, a network attacker can answer in the server's place.
func WithInsecureTrustOnFirstUse() Option { return func(c *config) { c.tofu = true } }

// WithSimulation accepts a simulation-mode server. Simulation protects
// nothing: there is no TEE, the operator can read models and inputs, and
// signed replies prove nothing about where they were computed. Without this
// option Connect refuses such a server with ErrSimulationServer.
func WithSimulation() Option { return func(c *config) { c.simulation = true } }

// WithAttestedPort sets the attested port. Without it, Connect uses the
// port a Blindfold server reports in its server information (the port its
// attested listener is bound to), and 50051 for servers that report none
// (BlindAI). Pass it when a port mapping or proxy puts the attested port
// elsewhere than the server believes.
func WithAttestedPort(port int) Option {
	return func(c *config) { c.attestedPort, c.portGiven = port, true }
}

// WithToken sends a bearer token (a JWT the server's operator accepts) with
// every call on the attested port, as "authorization: Bearer <token>"
// metadata. Servers that require authentication answer UNAUTHENTICATED
// without one. The token only travels over the attested TLS channel.
func WithToken(token string) Option { return func(c *config) { c.token = token } }

// bearer sends a token as per-RPC metadata, only over TLS.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

// WithMaxReceiveBytes sets the largest reply accepted (default 8 MiB).
func WithMaxReceiveBytes(n int) Option { return func(c *config) { c.maxRecv = n } }

// WithLogger sets the logger for warnings (simulation, trust on first use)
// and debug messages. The default is slog.Default(). Nothing secret, no
// model and no input is ever logged.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// ServerInfo is what the server says about itself.
type ServerInfo struct {
	// ProtocolVersion is the wire protocol version ("0.5.0").
	ProtocolVersion string
	// ServerVersion is the server software's version (Blindfold servers
	// only; empty for BlindAI).
	ServerVersion string
	// Simulation is the server's own claim that it runs without a TEE
	// (Blindfold servers only).
	Simulation bool
	// EvidenceType is the kind of evidence the server claims to produce
	// ("simulation", "sgx-dcap", ...; Blindfold servers only).
	EvidenceType string
	// AttestedPort and UntrustedPort are the ports the server says its
	// listeners are bound to (Blindfold servers only; 0: not reported).
	// They are claims of the untrusted host: a wrong attested port can
	// only make the connection fail, since the attested port must present
	// the attested certificate.
	AttestedPort, UntrustedPort int
	// ReplicaID and ReplicaSource are the id of the replica that answered
	// and how it was derived, as its signed receipts carry them (Blindfold
	// servers only; empty until the replica has issued evidence). A claim
	// of the untrusted port: a proof's verifier derives the id from the
	// evidence itself. In simulation it is a random value and proves
	// nothing.
	ReplicaID     []byte
	ReplicaSource string
}

// Client is a connection to a Blindfold server. It is safe for concurrent
// use.
type Client struct {
	conn       *grpc.ClientConn
	exchange   securedexchange.ExchangeClient
	info       ServerInfo
	simulation bool
	verified   *attest.Verified
	certDER    []byte
	signingKey ed25519.PublicKey
	hostFP     *pinnedFingerprint
	untrusted  string
	attested   string
	log        *slog.Logger
	replicas   *replicaEvidence // nil in simulation
	closeOnce  sync.Once
	closeErr   error
}

// pinnedFingerprint records the untrusted port's certificate and refuses a
// different one afterwards.
type pinnedFingerprint struct {
	mu  sync.Mutex
	der []byte
}

func (p *pinnedFingerprint) check(der []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.der == nil {
		p.der = append([]byte(nil), der...)
		return nil
	}
	if !bytes.Equal(p.der, der) {
		return fmt.Errorf("%w: the untrusted port's certificate changed from %s to %s", ErrTrust, identity.Fingerprint(p.der), identity.Fingerprint(der))
	}
	return nil
}

func (p *pinnedFingerprint) get() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.der
}

// SplitAddr splits a server address into its host and untrusted port. addr is "host" (port 50052) or
// "host:port"; IPv6 literals may be bracketed.
func SplitAddr(addr string) (host string, port int, err error) {
	if addr == "" {
		return "", 0, errors.New("client: empty server address (want host or host:port)")
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		// No port: the whole string is the host (an IPv6 literal may have
		// brackets).
		h = strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
		if strings.ContainsAny(h, "[]/ ") || h == "" || (strings.Contains(h, ":") && net.ParseIP(h) == nil) {
			return "", 0, fmt.Errorf("client: server address %q is not host or host:port", addr)
		}
		return h, DefaultUntrustedPort, nil
	}
	n, perr := strconv.Atoi(p)
	if perr != nil || n < 1 || n > 65535 || h == "" {
		return "", 0, fmt.Errorf("client: server address %q: want host:port with a port from 1 to 65535", addr)
	}
	return h, n, nil
}

// Connect connects to the server at addr ("host" or "host:port" of the
// untrusted port, default port 50052) and opens the attested channel. See
// the package documentation for the steps, and the Option functions for
// what can be configured. The context bounds the whole connection.
func Connect(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	cfg := config{attestedPort: DefaultAttestedPort, maxRecv: DefaultMaxReceiveBytes}
	for _, o := range opts {
		o(&cfg)
	}
	log := cfg.logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.attestedPort < 1 || cfg.attestedPort > 65535 {
		return nil, fmt.Errorf("client: attested port %d is out of range (1 to 65535)", cfg.attestedPort)
	}
	if cfg.maxRecv < 1 {
		return nil, fmt.Errorf("client: max receive size %d must be positive", cfg.maxRecv)
	}
	if cfg.policy != nil && cfg.simulation {
		return nil, fmt.Errorf("%w: WithPolicy and WithSimulation exclude each other: a client holding the server to a policy never accepts a simulation server; pass WithSimulation alone to accept one (it protects nothing)", ErrUsage)
	}
	if cfg.policy != nil {
		if err := cfg.policy.Validate(); err != nil {
			return nil, fmt.Errorf("%w: WithPolicy: %w", ErrUsage, err)
		}
		for _, w := range cfg.policy.Warnings() {
			log.Warn(w)
		}
	}
	host, port, err := SplitAddr(addr)
	if err != nil {
		return nil, err
	}
	untrustedAddr := net.JoinHostPort(host, strconv.Itoa(port))
	attestedAddr := net.JoinHostPort(host, strconv.Itoa(cfg.attestedPort))

	pin := &pinnedFingerprint{}
	utls, err := untrustedTLS(&cfg, pin, log, untrustedAddr)
	if err != nil {
		return nil, err
	}
	uconn, err := grpc.NewClient(untrustedAddr, grpc.WithTransportCredentials(credentials.NewTLS(utls)), grpc.WithUserAgent(UserAgent+"/"+Version))
	if err != nil {
		return nil, &ConnectError{Step: "untrusted port", Addr: untrustedAddr, Err: err}
	}
	defer uconn.Close()
	att := untrusted.NewAttestationClient(uconn)

	reply, err := att.GetServerInfo(ctx, &untrusted.GetServerInfoRequest{})
	if err != nil {
		if status.Code(err) == codes.Unavailable {
			// gRPC hides why; one direct handshake tells (a refused
			// connection, or a certificate other than the trusted one).
			if why := handshake(ctx, untrustedAddr, utls); why != nil {
				err = &explained{why: why, rpc: err}
			}
		}
		return nil, &ConnectError{Step: "GetServerInfo on the untrusted port", Addr: untrustedAddr, Err: err}
	}
	info := ServerInfo{
		ProtocolVersion: reply.GetVersion(),
		ServerVersion:   reply.GetServerVersion(),
		Simulation:      reply.GetSimulation(),
		EvidenceType:    reply.GetEvidenceType(),
		AttestedPort:    int(reply.GetAttestedPort()),
		UntrustedPort:   int(reply.GetUntrustedPort()),
		ReplicaID:       reply.GetReplicaId(),
		ReplicaSource:   reply.GetReplicaSource(),
	}
	if !cfg.portGiven && info.AttestedPort > 0 && info.AttestedPort <= 65535 {
		attestedAddr = net.JoinHostPort(host, strconv.Itoa(info.AttestedPort))
		log.Debug("using the attested port the server reports", "attested", attestedAddr)
	}
	if err := CheckVersion(info.ProtocolVersion); err != nil {
		return nil, &ConnectError{Step: "version check", Addr: untrustedAddr, Err: err}
	}
	if cfg.tofu {
		log.Warn("INSECURE: trusting the untrusted port's certificate on first use, without the operator's certificate; compare this fingerprint with the operator's host_server.pem",
			"addr", untrustedAddr, "sha256_fingerprint", identity.Fingerprint(pin.get()))
	}

	var verified *attest.Verified
	var verify evidenceVerifier
	if !cfg.simulation {
		verified, verify, err = attestServer(ctx, &cfg, uconn, att, info)
		if err != nil {
			return nil, &ConnectError{Step: attestStep(err), Addr: untrustedAddr, Err: err}
		}
	}
	var certDER []byte
	if verified != nil {
		certDER = verified.CertificateDER
		if verified.Claims.TestRoot {
			log.Warn("TEST ROOT: the evidence was verified against a test root CA, not the vendor's; it proves nothing about hardware", "addr", untrustedAddr, "evidence", verified.Claims.Type)
		}
	} else {
		log.Warn("SIMULATION MODE: this connection protects nothing; there is no TEE and no attestation, and the server's operator can read every model and input sent",
			"addr", untrustedAddr, "server_claims_simulation", info.Simulation)
		certReply, err := att.GetCertificate(ctx, &untrusted.GetCertificateRequest{})
		if err != nil {
			return nil, &ConnectError{Step: "GetCertificate on the untrusted port", Addr: untrustedAddr, Err: err}
		}
		certDER = certReply.GetEnclaveTlsCertificate()
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, &ConnectError{Step: "attested certificate", Addr: untrustedAddr, Err: fmt.Errorf("%w: parsing it: %v", ErrTrust, err)}
	}
	signingKey, err := identity.SigningKeyFromCertificate(cert)
	if err != nil {
		return nil, &ConnectError{Step: "attested certificate", Addr: untrustedAddr, Err: fmt.Errorf("%w: %v", ErrTrust, err)}
	}
	atls := attestedTLS(cert, certDER)
	dialOpts := []grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewTLS(atls)),
		grpc.WithUserAgent(UserAgent + "/" + Version),
		// The wire codec sends input chunks without copying them and
		// decodes replies with the outputs aliasing one buffer.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(cfg.maxRecv), grpc.ForceCodecV2(wire.NewCodec())),
		// Replies of several megabytes arrive without waiting for window
		// updates, as the server's windows let requests in.
		grpc.WithInitialWindowSize(4 << 20),
		grpc.WithInitialConnWindowSize(16 << 20),
		grpc.WithReadBufferSize(256 << 10),
		grpc.WithWriteBufferSize(256 << 10),
	}
	if cfg.token != "" {
		dialOpts = append(dialOpts, grpc.WithPerRPCCredentials(bearer(cfg.token)))
	}
	conn, err := grpc.NewClient(attestedAddr, dialOpts...)
	if err != nil {
		return nil, &ConnectError{Step: StepAttestedPort, Addr: attestedAddr, Err: err}
	}
	if err := waitReady(ctx, conn, attestedAddr, atls); err != nil {
		conn.Close()
		return nil, &ConnectError{Step: StepAttestedPort, Addr: attestedAddr, Err: err}
	}
	log.Debug("connected", "untrusted", untrustedAddr, "attested", attestedAddr,
		"attested_certificate", identity.Fingerprint(certDER), "protocol", info.ProtocolVersion)
	var replicas *replicaEvidence
	if verified != nil {
		replicas = newReplicaEvidence(verified.Evidence, verify)
	}
	return &Client{
		replicas:   replicas,
		conn:       conn,
		exchange:   securedexchange.NewExchangeClient(conn),
		info:       info,
		simulation: verified == nil,
		verified:   verified,
		certDER:    certDER,
		signingKey: signingKey,
		hostFP:     pin,
		untrusted:  untrustedAddr,
		attested:   attestedAddr,
		log:        log,
	}, nil
}

// untrustedTLS builds the TLS configuration of the untrusted port.
func untrustedTLS(cfg *config, pin *pinnedFingerprint, log *slog.Logger, addr string) (*tls.Config, error) {
	tc := &tls.Config{ServerName: identity.ServerName, MinVersion: tls.VersionTLS12}
	hostCert := cfg.hostCert
	if cfg.hostCertPath != "" {
		b, err := os.ReadFile(cfg.hostCertPath)
		if err != nil {
			return nil, fmt.Errorf("client: reading the host certificate: %w", err)
		}
		hostCert = b
	}
	switch {
	case cfg.hostCertFP != nil && (hostCert != nil || cfg.tofu):
		return nil, fmt.Errorf("%w: a host certificate fingerprint excludes a host certificate and trust on first use", ErrUsage)
	case cfg.hostCertFP != nil:
		if len(cfg.hostCertFP) != sha256.Size {
			return nil, fmt.Errorf("%w: host certificate fingerprint %q is not a SHA-256 (64 hex digits, colons optional)", ErrUsage, cfg.hostCertFPIn)
		}
		want := cfg.hostCertFP
		tc.InsecureSkipVerify = true // checked below, by fingerprint
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("%w: the untrusted port presented no certificate", ErrTrust)
			}
			got := cs.PeerCertificates[0]
			if sum := sha256.Sum256(got.Raw); !bytes.Equal(sum[:], want) {
				return hostCertMismatch(got, colonHex(want), "the fingerprint given")
			}
			return pin.check(got.Raw)
		}
	case hostCert != nil:
		cert, err := parseCertificate(hostCert)
		if err != nil {
			return nil, fmt.Errorf("client: host certificate: %w", err)
		}
		source := "the certificate given"
		if cfg.hostCertPath != "" {
			source = cfg.hostCertPath
		}
		pool := x509.NewCertPool()
		pool.AddCert(cert)
		// Verified here rather than by crypto/tls, so that a mismatch
		// names both fingerprints rather than an x509 chain error.
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("%w: the untrusted port presented no certificate", ErrTrust)
			}
			leaf := cs.PeerCertificates[0]
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: identity.ServerName}); err != nil {
				if bytes.Equal(leaf.Raw, cert.Raw) {
					return fmt.Errorf("%w: the untrusted port's certificate: %w", ErrTrust, err)
				}
				return hostCertMismatch(leaf, identity.Fingerprint(cert.Raw), source)
			}
			return pin.check(leaf.Raw)
		}
	case cfg.tofu:
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("%w: the untrusted port presented no certificate", ErrTrust)
			}
			return pin.check(cs.PeerCertificates[0].Raw)
		}
	default:
		return nil, ErrNoTrust
	}
	return tc, nil
}

// colonHex formats a digest as Fingerprint does.
func colonHex(sum []byte) string {
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

func hostCertMismatch(presented *x509.Certificate, expected, source string) error {
	_, keyErr := identity.SigningKeyFromCertificate(presented)
	return &HostCertificateError{
		Presented:    identity.Fingerprint(presented.Raw),
		Expected:     expected,
		Source:       source,
		AttestedPort: keyErr == nil,
	}
}

// attestedTLS trusts exactly the attested certificate: it is the only root,
// and the server must present that very certificate.
func attestedTLS(cert *x509.Certificate, der []byte) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{
		ServerName: identity.ServerName,
		RootCAs:    pool,
		MinVersion: tls.VersionTLS12,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, der) {
				return fmt.Errorf("%w: the attested port presented a certificate other than the attested one (%s)", ErrTrust, identity.Fingerprint(der))
			}
			return nil
		},
	}
}

// parseCertificate accepts PEM (first CERTIFICATE block) or DER.
func parseCertificate(b []byte) (*x509.Certificate, error) {
	if bytes.Contains(b, []byte("-----BEGIN")) {
		return identity.ParseCertificatePEM(b)
	}
	c, err := x509.ParseCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("not a PEM or DER certificate: %w", err)
	}
	return c, nil
}

// waitReady connects conn and waits until it is ready. When the connection
// fails it makes one direct TLS handshake with the same configuration, to
// report why (gRPC keeps the reason to itself until a call is made).
func waitReady(ctx context.Context, conn *grpc.ClientConn, addr string, tc *tls.Config) error {
	conn.Connect()
	for {
		s := conn.GetState()
		switch s {
		case connectivity.Ready:
			return nil
		case connectivity.TransientFailure, connectivity.Shutdown:
			return probe(ctx, addr, tc)
		}
		if !conn.WaitForStateChange(ctx, s) {
			return fmt.Errorf("not ready before the deadline: %w", ctx.Err())
		}
	}
}

// explained is a gRPC error with the reason found for it: its text is the
// reason's, and both match errors.Is, errors.As and status.Code.
type explained struct{ why, rpc error }

func (e *explained) Error() string   { return e.why.Error() }
func (e *explained) Unwrap() []error { return []error{e.why, e.rpc} }

// handshake makes one TLS handshake with tc and returns why it failed (nil
// if it succeeded).
func handshake(ctx context.Context, addr string, tc *tls.Config) error {
	c := tc.Clone()
	c.NextProtos = []string{"h2"}
	d := tls.Dialer{Config: c}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	conn.Close()
	return nil
}

func probe(ctx context.Context, addr string, tc *tls.Config) error {
	c := tc.Clone()
	c.NextProtos = []string{"h2"}
	d := tls.Dialer{Config: c}
	conn, err := d.DialContext(ctx, "tcp", addr)
	var verr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &verr):
		return fmt.Errorf("%w: the attested port's certificate is not the attested one: %w", ErrTrust, err)
	case err != nil:
		return fmt.Errorf("connection or TLS handshake failed: %w", err)
	}
	conn.Close()
	return errors.New("the gRPC connection failed although a TLS handshake succeeds; is this a Blindfold attested port?")
}

// CheckVersion accepts protocol versions 0.5.x, compared component by
// component as BlindAI 0.5 clients do ("0.5.0" to "0.5.9" and later patch
// releases pass; "0.6.0" and "1.5.0" do not).
func CheckVersion(v string) error {
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return fmt.Errorf("%w: %q is not MAJOR.MINOR.PATCH (allowed: 0.5.x)", ErrIncompatibleVersion, v)
	}
	nums := make([]int, 3)
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p == "" || (len(p) > 1 && p[0] == '0') {
			return fmt.Errorf("%w: %q is not MAJOR.MINOR.PATCH (allowed: 0.5.x)", ErrIncompatibleVersion, v)
		}
		nums[i] = n
	}
	if nums[0] != 0 || nums[1] != 5 {
		return fmt.Errorf("%w: server speaks %s, this client speaks 0.5.x", ErrIncompatibleVersion, v)
	}
	return nil
}

// ServerInfo returns what the server said about itself at Connect.
func (c *Client) ServerInfo() ServerInfo { return c.info }

// Simulation reports whether the connection runs in simulation mode (no
// evidence verified; it protects nothing).
func (c *Client) Simulation() bool { return c.simulation }

// Attestation returns what the verified hardware evidence says (nil in
// simulation mode): the SGX verification result (measurement, TCB status,
// advisories, collateral dates), the attested certificate and the
// evidence itself.
func (c *Client) Attestation() *attest.Verified { return c.verified }

// evidence returns the verified evidence for proofs (nil in simulation).
func (c *Client) evidence() *attest.Evidence {
	if c.verified == nil {
		return nil
	}
	return c.verified.Evidence
}

// AttestedCertificate returns the DER of the attested port's certificate.
func (c *Client) AttestedCertificate() []byte { return append([]byte(nil), c.certDER...) }

// AttestedCertificateFingerprint returns the SHA-256 fingerprint of the
// attested certificate (colon-separated hex).
func (c *Client) AttestedCertificateFingerprint() string { return identity.Fingerprint(c.certDER) }

// HostCertificateFingerprint returns the SHA-256 fingerprint of the
// certificate the untrusted port presented (the one trusted on first use,
// with WithInsecureTrustOnFirstUse).
func (c *Client) HostCertificateFingerprint() string {
	if der := c.hostFP.get(); der != nil {
		return identity.Fingerprint(der)
	}
	return ""
}

// SigningKey returns the server's Ed25519 reply-signing key, read from the
// attested certificate.
func (c *Client) SigningKey() ed25519.PublicKey {
	return append(ed25519.PublicKey(nil), c.signingKey...)
}

// UntrustedAddr returns the address of the untrusted port.
func (c *Client) UntrustedAddr() string { return c.untrusted }

// AttestedAddr returns the address of the attested port.
func (c *Client) AttestedAddr() string { return c.attested }

// Close closes the attested connection. Calls in flight fail; Close may be
// called more than once.
func (c *Client) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.conn.Close() })
	return c.closeErr
}

// DeleteModel unloads the model id from the server.
func (c *Client) DeleteModel(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("client: DeleteModel needs a model id")
	}
	if _, err := c.exchange.DeleteModel(ctx, &securedexchange.DeleteModelRequest{ModelId: id}); err != nil {
		return fmt.Errorf("client: deleting model %q: %w", id, err)
	}
	return nil
}

func clientInfo() *securedexchange.ClientInfo {
	return &securedexchange.ClientInfo{UserAgent: UserAgent, UserAgentVersion: Version}
}
