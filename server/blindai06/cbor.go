package blindai06

import (
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/api/untrusted"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
	"github.com/blindfold-ai/blindfold/server"
	"github.com/blindfold-ai/blindfold/tensor"
)

// Decoding limits. Bodies are bounded by the server's size limits (see
// uploadBodyLimit and runBodyLimit); these bound their structure.
const (
	// maxNesting is the deepest nesting of CBOR arrays and maps (a run
	// request needs 4: request, inputs, tensor, info and fact).
	maxNesting = 8
	// maxArrayElements bounds every array of a run request (its inputs,
	// a tensor's dimensions); the model array of an upload is bounded by
	// max_model_bytes instead.
	maxArrayElements = 4096
	// maxMapPairs bounds every map.
	maxMapPairs = 64
	// maxFieldBytes bounds an upload's fields other than the model
	// (model_name, client_info, unknown fields), encoded.
	maxFieldBytes = 64 << 10
	// smallBodyLimit bounds the body of a delete request.
	smallBodyLimit = 64 << 10
	// bodyOverhead is the room for a request's fields beside its model or
	// input bytes.
	bodyOverhead = 1 << 20
)

// uploadBodyLimit is the largest upload body for a model of up to
// maxModel bytes: 0.6 sends one CBOR integer per byte, of one or two bytes.
func uploadBodyLimit(maxModel int64) int64 { return 2*maxModel + bodyOverhead }

// runBodyLimit is the largest run body for inputs of up to maxInput bytes.
func runBodyLimit(maxInput int64) int64 { return maxInput + bodyOverhead }

var (
	decMode cbor.DecMode
	encMode cbor.EncMode
)

func init() {
	var err error
	decMode, err = cbor.DecOptions{
		MaxNestedLevels:  maxNesting,
		MaxArrayElements: maxArrayElements,
		MaxMapPairs:      maxMapPairs,
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthAllowed,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	encMode, err = cbor.EncOptions{}.EncMode()
	if err != nil {
		panic(err)
	}
}

// tensorMsg is 0.6's tensor: its info and its little-endian values.
type tensorMsg struct {
	Info      tensorInfo `cbor:"info"`
	BytesData []byte     `cbor:"bytes_data"`
}

// tensorInfo is 0.6's TensorInfo: shape (fact), type and input name.
type tensorInfo struct {
	Fact      []int64 `cbor:"fact"`
	DatumType int     `cbor:"datum_type"`
	NodeName  *string `cbor:"node_name"`
}

// runRequest is the body of POST /run; client_info is ignored.
type runRequest struct {
	ModelID    string          `cbor:"model_id"`
	ModelHash  string          `cbor:"model_hash"`
	Inputs     []tensorMsg     `cbor:"inputs"`
	ClientInfo cbor.RawMessage `cbor:"client_info"`
}

// runReply is the body of POST /run's answer.
type runReply struct {
	Outputs []tensorMsg `cbor:"outputs"`
}

// uploadReply is the body of POST /upload's answer.
type uploadReply struct {
	Hash    []byte `cbor:"hash"`
	ModelID string `cbor:"model_id"`
}

// deleteRequest is the body of POST /delete.
type deleteRequest struct {
	ModelID string `cbor:"model_id"`
}

// collateral is the body of GET /collateral: 0.6's field names.
type collateral struct {
	Version               int    `cbor:"version"`
	PCKCertificate        string `cbor:"pck_certificate"`
	PCKCRLIssuerChain     string `cbor:"pck_crl_issuer_chain"`
	PCKSigningChain       string `cbor:"pck_signing_chain"`
	RootCACRL             string `cbor:"root_ca_crl"`
	PCKCRL                string `cbor:"pck_crl"`
	TCBInfo               string `cbor:"tcb_info"`
	TCBInfoIssuerChain    string `cbor:"tcb_info_issuer_chain"`
	QEIdentity            string `cbor:"qe_identity"`
	QEIdentityIssuerChain string `cbor:"qe_identity_issuer_chain"`
}

// collateralOf is the one adapter from the gRPC port's evidence to 0.6's
// collateral. 0.6 clients also expect the PCK certificate and its signing
// chain, which Blindfold's quotes carry in their certification data (type
// 5): they are taken from there when the collateral lacks them.
func collateralOf(quote []byte, c *untrusted.SgxCollateral) collateral {
	pck, chain := c.GetPckCertificate(), c.GetPckSigningChain()
	if pck == "" || chain == "" {
		if q, err := abi.ParseQuote(quote); err == nil && q.SignatureData.CertificationData.Type == abi.CertDataPCKCertChain {
			rest := q.SignatureData.CertificationData.Data
			var blocks []string
			for {
				var b *pem.Block
				if b, rest = pem.Decode(rest); b == nil {
					break
				}
				blocks = append(blocks, string(pem.EncodeToMemory(b)))
			}
			if len(blocks) > 1 {
				pck, chain = blocks[0], strings.Join(blocks[1:], "")
			}
		}
	}
	return collateral{
		Version:               int(c.GetVersion()),
		PCKCertificate:        pck,
		PCKCRLIssuerChain:     c.GetPckCrlIssuerChain(),
		PCKSigningChain:       chain,
		RootCACRL:             c.GetRootCaCrl(),
		PCKCRL:                c.GetPckCrl(),
		TCBInfo:               c.GetTcbInfo(),
		TCBInfoIssuerChain:    c.GetTcbInfoIssuerChain(),
		QEIdentity:            c.GetQeIdentity(),
		QEIdentityIssuerChain: c.GetQeIdentityIssuerChain(),
	}
}

// badRequest is INVALID_ARGUMENT (HTTP 400).
func badRequest(format string, args ...any) error {
	return status.Error(codes.InvalidArgument, fmt.Sprintf(format, args...))
}

// body reads a request body within a size limit and a progress timeout:
// each read must bring something within progress, or the request fails
// with DEADLINE_EXCEEDED (504).
type body struct {
	r        io.Reader
	rc       *http.ResponseController
	progress time.Duration
	limit    int64
	what     string // the setting that bounds it, for messages
}

func newBody(w http.ResponseWriter, r *http.Request, limit int64, progress time.Duration, what string) *body {
	return &body{r: http.MaxBytesReader(w, r.Body, limit), rc: http.NewResponseController(w), progress: progress, limit: limit, what: what}
}

// Read implements io.Reader; its errors other than io.EOF are statuses.
func (b *body) Read(p []byte) (int, error) {
	if b.progress > 0 {
		b.rc.SetReadDeadline(time.Now().Add(b.progress))
	}
	n, err := b.r.Read(p)
	if err == nil || err == io.EOF {
		return n, err
	}
	var tooBig *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &tooBig):
		return n, status.Errorf(codes.ResourceExhausted, "the request body is over %d bytes, more than the server's limit allows (%s)", b.limit, b.what)
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return n, status.Errorf(codes.DeadlineExceeded, "the client sent nothing for %s (stream_progress_timeout); request cancelled", b.progress)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return n, badRequest("the request body ended before its declared Content-Length")
	default:
		return n, status.Errorf(codes.Canceled, "reading the request body failed: %v", err)
	}
}

// decodeRun reads and decodes a run request. raw is the body, to zero once
// the run ends (it held the inputs).
func decodeRun(r io.Reader) (*runRequest, []byte, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, raw, asStatus(err)
	}
	var req runRequest
	if err := decMode.Unmarshal(raw, &req); err != nil {
		return nil, raw, cborError(err)
	}
	return &req, raw, nil
}

// decodeDelete reads and decodes a delete request.
func decodeDelete(r io.Reader) (*deleteRequest, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, asStatus(err)
	}
	var req deleteRequest
	if err := decMode.Unmarshal(raw, &req); err != nil {
		return nil, cborError(err)
	}
	return &req, nil
}

// asStatus keeps a status error, and makes others INVALID_ARGUMENT.
func asStatus(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return badRequest("the request body is truncated: it ends inside a CBOR item")
	}
	return badRequest("%v", err)
}

// cborError says what was wrong with a body the CBOR decoder refused.
func cborError(err error) error {
	if errors.Is(err, io.EOF) {
		return badRequest("the request body is empty; it must be a CBOR map")
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return badRequest("the request body is truncated: it ends inside a CBOR item")
	}
	return badRequest("the request body is not the expected CBOR: %v", err)
}

// addInput gives input i of a run request to the core.
func addInput(in *server.Inputs, i int, t tensorMsg) error {
	if t.Info.DatumType < 0 || t.Info.DatumType > math.MaxInt32 || !tensor.DType(t.Info.DatumType).Valid() {
		return badRequest("input %d: unknown datum_type %d", i, t.Info.DatumType)
	}
	name := ""
	if t.Info.NodeName != nil {
		name = *t.Info.NodeName
	}
	shape := t.Info.Fact
	if shape == nil {
		shape = []int64{}
	}
	return in.Add(i, name, tensor.DType(t.Info.DatumType), shape, t.BytesData)
}
