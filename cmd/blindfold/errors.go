package main

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/client"
)

// cliError is an error worded for the command line (flags and environment
// variables, not Go names) in one layer. It keeps the cause for exit codes
// and errors.Is, but does not print it.
type cliError struct {
	msg   string
	cause error
}

func (e *cliError) Error() string { return e.msg }
func (e *cliError) Unwrap() error { return e.cause }

func reword(cause error, format string, args ...any) error {
	return &cliError{msg: fmt.Sprintf(format, args...), cause: cause}
}

// explainConnect words a Connect error for the command line.
func explainConnect(err error, c *connFlags, addr string) error {
	var hce *client.HostCertificateError
	var ce *client.ConnectError
	var pe *fs.PathError
	switch {
	case errors.As(err, &hce):
		msg := fmt.Sprintf("connecting to %s: the server's certificate has fingerprint %s, %s has %s", addr, hce.Presented, trustSource(c), hce.Expected)
		if hce.AttestedPort {
			msg += fmt.Sprintf("\n%s names the server's attested port (its certificate is an attested one): give the untrusted port instead (default 50052); the attested port is found from there", addr)
		} else {
			msg += "\nask the operator for this server's host_server.pem, or check that --host-cert (BLINDFOLD_HOST_CERT) and the address name the same server"
		}
		return reword(err, "%s", msg)
	case errors.Is(err, client.ErrSimulationServer):
		return reword(err, "%s runs in simulation mode (no TEE, no attestation: it protects nothing); pass --simulation (or set BLINDFOLD_SIMULATION=1), without --policy, to accept it", addr)
	case errors.Is(err, client.ErrNoPolicy):
		return reword(err, "%s offers hardware evidence (an SGX quote): pass --policy policy.toml (or set BLINDFOLD_POLICY) to verify it; \"blindfold policy init\" writes one", addr)
	case errors.As(err, &pe) && ce == nil && c.HostCert != "":
		return reword(err, "reading the host certificate (--host-cert / BLINDFOLD_HOST_CERT): %v", pe)
	case errors.As(err, &ce) && ce.Step == client.StepAttestedPort:
		return reword(err, "cannot open the attested port %s: %s\nthe attested port comes from --attested-port (or BLINDFOLD_ATTESTED_PORT, or the profile) when given, else from the server's own report, else 50051; pass --attested-port PORT if the server's attested port is elsewhere (a BlindAI server on another port, a port mapping)", ce.Addr, causeText(ce.Err))
	case errors.As(err, &ce) && strings.HasPrefix(ce.Step, "GetServerInfo") && isRefused(ce.Err):
		return reword(err, "cannot reach the untrusted port at %s: connection refused; is the server running, and is %s its untrusted port (default 50052)?", ce.Addr, addr)
	case errors.As(err, &ce):
		return reword(err, "connecting to %s (%s): %s", ce.Addr, ce.Step, causeText(ce.Err))
	}
	return reword(err, "%s", causeText(err))
}

// trustSource names what the client trusted, for messages.
func trustSource(c *connFlags) string {
	switch {
	case c.HostCert != "":
		return "your " + c.HostCert + " (--host-cert)"
	case c.Fingerprint != "":
		return "the pinned fingerprint (--host-cert-fingerprint or the profile)"
	}
	return "the certificate trusted"
}

func isRefused(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection refused")
}

// plainText is an error's text for the command line, without the Go
// client package's "client: " prefixes.
func plainText(err error) string {
	return strings.ReplaceAll(err.Error(), "client: ", "")
}

// causeText is an error's text without Go package prefixes and gRPC's
// "rpc error: code = ... desc =" wrapping.
func causeText(err error) string {
	if st := grpcStatus(err); st != nil && st.Code() != codes.OK && st.Code() != codes.Unknown {
		return st.Message()
	}
	s := err.Error()
	for {
		t := strings.TrimPrefix(s, "client: ")
		if t == s {
			break
		}
		s = t
	}
	return s
}

// grpcStatus returns the gRPC status inside err, with the server's own
// message (status.FromError would put the whole wrapped text in it), or
// nil.
func grpcStatus(err error) *status.Status {
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus()
	}
	return nil
}

// explainServer words a refusal from the server: its code and message,
// once, with what to do where the CLI knows.
func explainServer(err error) string {
	st := grpcStatus(err)
	if st == nil {
		return err.Error()
	}
	msg := st.Message()
	switch st.Code() {
	case codes.Unauthenticated:
		if strings.HasPrefix(msg, "this server requires a bearer token") {
			return "the server requires a token: set BLINDFOLD_TOKEN (or pass --token JWT); the server's operator issues tokens (blindfold token issue)"
		}
		return msg + " (the token from BLINDFOLD_TOKEN or --token; ask the server's operator for a valid one)"
	}
	return msg
}
