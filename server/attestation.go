package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/api/evidence"
	"github.com/blindfold-ai/blindfold/api/untrusted"
	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/gramine"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sim"
)

// newAttester picks the evidence provider: the one given, else the one the
// configuration names. It fails closed: hardware mode without a provider,
// and simulation with one, are refused.
func newAttester(cfg Config, given attest.Attester, log *slog.Logger) (attest.Attester, error) {
	if cfg.Simulation {
		if given != nil {
			return nil, errors.New("server: an evidence provider was given to a simulation-mode server; simulation must not produce anything shaped like hardware evidence")
		}
		return nil, nil
	}
	if given != nil {
		return given, nil
	}
	switch cfg.TEE {
	case TEESGXGramine:
		cache := pccsCache(cfg, log)
		a, err := gramine.New(cfg.AttestationDir, cache)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		if err := a.Check(); err != nil {
			return nil, fmt.Errorf("server: tee = %q: %w", cfg.TEE, err)
		}
		return a, nil
	case TEETDX, TEESNP:
		return newCVMIssuer(cfg, log)
	case "":
		return nil, errors.New("server: no TEE evidence provider is configured, so the server cannot run in hardware mode; " +
			"under Gramine on SGX set tee = \"sgx-gramine\" and pccs_url (see docs/sgx.md); " +
			"to run WITHOUT any protection for development, pass --simulation (or simulation = true)")
	default:
		return nil, fmt.Errorf("server: unknown tee %q", cfg.TEE)
	}
}

// attestationService implements untrusted.Attestation on the untrusted port.
type attestationService struct {
	untrusted.UnimplementedAttestationServer
	s *Server
}

func (a *attestationService) GetCertificate(context.Context, *untrusted.GetCertificateRequest) (*untrusted.GetCertificateReply, error) {
	return &untrusted.GetCertificateReply{EnclaveTlsCertificate: a.s.id.DER}, nil
}

func (a *attestationService) GetToken(context.Context, *untrusted.GetTokenRequest) (*untrusted.GetTokenReply, error) {
	return &untrusted.GetTokenReply{}, nil
}

const simulationNoQuote = "the server runs in simulation mode: there is no TEE and no quote; a client must opt in to simulation explicitly to use it"

// GetSgxQuoteWithCollateral returns fresh evidence over SHA-256 of the
// attested certificate and 32 zero bytes, as BlindAI 0.5 clients expect.
func (a *attestationService) GetSgxQuoteWithCollateral(ctx context.Context, _ *untrusted.GetSgxQuoteWithCollateralRequest) (*untrusted.GetSgxQuoteWithCollateralReply, error) {
	return a.s.evidence(ctx, nil)
}

// evidence returns SGX evidence in BlindAI's shape, bound to the attested
// certificate and nonce (nil: none). A server whose TEE is not SGX answers
// FAILED_PRECONDITION: its evidence goes through GetEvidence only.
func (s *Server) evidence(ctx context.Context, nonce []byte) (*untrusted.GetSgxQuoteWithCollateralReply, error) {
	ev, err := s.issue(ctx, nonce)
	if err != nil {
		return nil, err
	}
	return s.sgxReply(ev)
}

// sgxReply converts SGX evidence to BlindAI's message.
func (s *Server) sgxReply(ev *attest.Evidence) (*untrusted.GetSgxQuoteWithCollateralReply, error) {
	if ev.Type != attest.TypeSGXDCAP {
		return nil, status.Errorf(codes.FailedPrecondition, "this server's evidence is %q, not an SGX quote: ask blindfold.v1.Evidence/GetEvidence", ev.Type)
	}
	c, err := sgx.DecodeCollateral(ev.Collateral)
	if err != nil || len(ev.Raw) == 0 {
		s.log.Error("the evidence provider returned incomplete SGX evidence", "err", err)
		return nil, status.Error(codes.Internal, "the evidence provider returned incomplete SGX evidence")
	}
	return &untrusted.GetSgxQuoteWithCollateralReply{
		Quote:           ev.Raw,
		Collateral:      sgx.CollateralToProto(c),
		EnclaveHeldData: s.id.DER,
	}, nil
}

// issue asks the issuer for evidence bound to the attested certificate and
// nonce (nil: none).
func (s *Server) issue(ctx context.Context, nonce []byte) (*attest.Evidence, error) {
	if s.cfg.Simulation {
		return nil, status.Error(codes.FailedPrecondition, simulationNoQuote)
	}
	if s.att == nil {
		return nil, status.Error(codes.Unavailable, "no TEE evidence provider is configured")
	}
	ev, err := s.att.Evidence(ctx, attest.ReportData(s.id.DER, nonce))
	if err != nil {
		if ctx.Err() != nil {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		s.log.Warn("no attestation evidence", "err", err)
		return nil, status.Errorf(codes.Unavailable, "attestation evidence unavailable: %v", err)
	}
	if ev == nil || ev.Type != s.att.Type() || len(ev.Raw) == 0 {
		s.log.Error("the evidence provider returned incomplete evidence", "type", s.att.Type())
		return nil, status.Error(codes.Internal, "the evidence provider returned incomplete evidence")
	}
	s.replica.learn(ev, s.log)
	return ev, nil
}

func (a *attestationService) GetServerInfo(context.Context, *untrusted.GetServerInfoRequest) (*untrusted.GetServerInfoReply, error) {
	kind := "simulation"
	switch {
	case a.s.att != nil:
		kind = a.s.att.Type()
	case !a.s.cfg.Simulation:
		kind = "none"
	}
	untrustedPort, attestedPort := a.s.servedPorts()
	replicaID, replicaSource, _ := a.s.replica.get()
	return &untrusted.GetServerInfoReply{
		ReplicaId:     replicaID,
		ReplicaSource: replicaSource,
		UntrustedPort: untrustedPort,
		AttestedPort:  attestedPort,
		Version:       ProtocolVersion,
		ServerVersion: Version,
		Simulation:    a.s.cfg.Simulation,
		EvidenceType:  kind,
	}, nil
}

// evidenceService implements blindfold.v1.Evidence on the untrusted port.
type evidenceService struct {
	evidence.UnimplementedEvidenceServer
	s *Server
}

// GetEvidence returns fresh evidence bound to the attested certificate and
// the client's nonce.
func (e *evidenceService) GetEvidence(ctx context.Context, req *evidence.GetEvidenceRequest) (*evidence.GetEvidenceReply, error) {
	if err := attest.CheckNonce(req.GetNonce()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if e.s.cfg.Simulation {
		// Simulation is evidence of its own type, loudly: it proves nothing.
		ev, err := sim.Issuer{}.Evidence(ctx, attest.ReportData(e.s.id.DER, req.GetNonce()))
		if err != nil {
			return nil, status.FromContextError(err).Err()
		}
		return &evidence.GetEvidenceReply{EvidenceType: ev.Type, Evidence: ev.Raw, Certificate: e.s.id.DER}, nil
	}
	ev, err := e.s.issue(ctx, req.GetNonce())
	if err != nil {
		return nil, err
	}
	if ev.Type == attest.TypeSGXDCAP {
		sgxEv, err := e.s.sgxReply(ev)
		if err != nil {
			return nil, err
		}
		return &evidence.GetEvidenceReply{EvidenceType: ev.Type, Sgx: sgxEv}, nil
	}
	return &evidence.GetEvidenceReply{EvidenceType: ev.Type, Evidence: ev.Raw, Collateral: ev.Collateral, Certificate: e.s.id.DER}, nil
}
