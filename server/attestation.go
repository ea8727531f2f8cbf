package server

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/api/untrusted"
)

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

func (a *attestationService) GetSgxQuoteWithCollateral(context.Context, *untrusted.GetSgxQuoteWithCollateralRequest) (*untrusted.GetSgxQuoteWithCollateralReply, error) {
	if a.s.cfg.Simulation {
		return nil, status.Error(codes.FailedPrecondition, "the server runs in simulation mode: there is no TEE and no quote; a client must opt in to simulation explicitly to use it")
	}
	return nil, status.Error(codes.Unavailable, "no SGX evidence provider is configured")
}

func (a *attestationService) GetServerInfo(context.Context, *untrusted.GetServerInfoRequest) (*untrusted.GetServerInfoReply, error) {
	evidence := "simulation"
	if !a.s.cfg.Simulation {
		evidence = "none"
	}
	return &untrusted.GetServerInfoReply{
		Version:       ProtocolVersion,
		ServerVersion: Version,
		Simulation:    a.s.cfg.Simulation,
		EvidenceType:  evidence,
	}, nil
}
