package proof

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/verifier"
)

// The bindings of a proof, as Binding.Name and MismatchError.Field name
// them.
const (
	BindModelID    = "model_id"
	BindModelHash  = "model_hash"
	BindInputHash  = "input_hash"
	BindOutputHash = "output_hash"
	BindNonce      = "nonce"
	BindReplica    = "replica_id"
	BindTime       = "issued_at"
)

// Binding says whether Verify checked one value that a proof can bind.
type Binding struct {
	// Name is one of the Bind constants.
	Name string
	// Checked is true when Verify compared the value with what the caller
	// expected or with the proof's own evidence.
	Checked bool
	// Note says what was compared, or why nothing was.
	Note string
}

// OutputHash returns the output hash of a run receipt: SHA-256 over the
// outputs in order, each described by its name, element type, shape and
// bytes, so that outputs renamed, retyped or reshaped do not hash alike.
// The hashed bytes are, with every integer big-endian:
//
//	uint32 number of outputs
//	for each output:
//	  uint32 length of index_name, index_name (UTF-8)
//	  uint32 datum_type (the enum's int32 value)
//	  uint32 number of dims, then each dim as uint32 (its int32 value)
//	  uint64 length of bytes_data, bytes_data
func OutputHash(outputs []*securedexchange.TensorData) []byte {
	h := sha256.New()
	var b [8]byte
	u32 := func(v uint32) {
		binary.BigEndian.PutUint32(b[:4], v)
		h.Write(b[:4])
	}
	u32(uint32(len(outputs)))
	for _, o := range outputs {
		info := o.GetInfo()
		name := info.GetIndexName()
		u32(uint32(len(name)))
		io.WriteString(h, name)
		u32(uint32(int32(info.GetDatumType())))
		u32(uint32(len(info.GetDims())))
		for _, d := range info.GetDims() {
			u32(uint32(d))
		}
		binary.BigEndian.PutUint64(b[:], uint64(len(o.GetBytesData())))
		h.Write(b[:])
		h.Write(o.GetBytesData())
	}
	return h.Sum(nil)
}

// ErrBadReceipt means a signed payload's receipt is malformed or
// contradicts the payload it is part of.
var ErrBadReceipt = errors.New("proof: malformed receipt")

// checkReceipt checks that a receipt is well formed and agrees with the
// rest of its payload.
func (r *Result) checkReceipt() error {
	rc := r.Receipt
	if rc == nil {
		return nil
	}
	if n := len(rc.GetNonce()); n > attest.MaxNonceBytes {
		return fmt.Errorf("%w: nonce is %d bytes, at most %d are allowed", ErrBadReceipt, n, attest.MaxNonceBytes)
	}
	if n := len(rc.GetReplicaId()); n > verifier.MaxReplicaIDBytes {
		return fmt.Errorf("%w: replica_id is %d bytes, at most %d are allowed", ErrBadReceipt, n, verifier.MaxReplicaIDBytes)
	}
	switch src := rc.GetReplicaSource(); src {
	case verifier.ReplicaSGXPCK, verifier.ReplicaTDXPCK, verifier.ReplicaSNPChipID, verifier.ReplicaSimulation:
		if len(rc.GetReplicaId()) == 0 {
			return fmt.Errorf("%w: replica_source %q with no replica_id", ErrBadReceipt, src)
		}
	case "":
		if len(rc.GetReplicaId()) != 0 {
			return fmt.Errorf("%w: a replica_id with no replica_source", ErrBadReceipt)
		}
	default:
		return fmt.Errorf("%w: unknown replica_source %q", ErrBadReceipt, src)
	}
	if r.Kind == KindSendModel {
		if len(rc.GetModelHash()) != 0 || len(rc.GetOutputHash()) != 0 {
			return fmt.Errorf("%w: an upload's receipt carries a model_hash or output_hash (the upload's model hash is the payload's model_hash)", ErrBadReceipt)
		}
		return nil
	}
	if n := len(rc.GetModelHash()); n != sha256.Size {
		return fmt.Errorf("%w: model_hash is %d bytes, want %d", ErrBadReceipt, n, sha256.Size)
	}
	want := OutputHash(r.Payload.GetRunModelPayload().GetOutputTensors())
	if !bytes.Equal(rc.GetOutputHash(), want) {
		return &MismatchError{Field: BindOutputHash, Want: hex.EncodeToString(want), Got: hex.EncodeToString(rc.GetOutputHash()),
			Detail: "the receipt's output_hash is not the hash of the payload's own outputs"}
	}
	return nil
}

// checkBindings compares the values the options name and records, in
// r.Bindings, what was checked. The replica binding is left to Verify,
// which has the evidence.
func (r *Result) checkBindings(opts VerifyOptions) error {
	rc := r.Receipt
	noReceipt := "the payload carries no receipt (a BlindAI 0.5 or older Blindfold reply)"
	r.Bindings = nil
	add := func(name string, checked bool, note string) {
		r.Bindings = append(r.Bindings, Binding{Name: name, Checked: checked, Note: note})
	}

	if opts.ModelID != "" {
		if opts.ModelID != r.ModelID {
			return &MismatchError{Field: BindModelID, Want: opts.ModelID, Got: r.ModelID}
		}
		add(BindModelID, true, "equals the expected model id")
	} else {
		add(BindModelID, false, "no expected model id given")
	}

	switch {
	case len(opts.ModelHash) == 0:
		add(BindModelHash, false, "no expected model hash given")
	case r.Kind == KindSendModel:
		if !bytes.Equal(opts.ModelHash, r.ModelHash) {
			return &MismatchError{Field: BindModelHash, Want: hex.EncodeToString(opts.ModelHash), Got: hex.EncodeToString(r.ModelHash)}
		}
		add(BindModelHash, true, "the upload's model_hash equals the expected model's SHA-256")
	case rc == nil:
		return &MismatchError{Field: BindModelHash, Want: hex.EncodeToString(opts.ModelHash), Detail: "a run proof binds the model hash only through a receipt, and " + noReceipt}
	default:
		if !bytes.Equal(opts.ModelHash, rc.GetModelHash()) {
			return &MismatchError{Field: BindModelHash, Want: hex.EncodeToString(opts.ModelHash), Got: hex.EncodeToString(rc.GetModelHash())}
		}
		add(BindModelHash, true, "the receipt's model_hash equals the expected model's SHA-256")
	}

	switch {
	case len(opts.InputHash) == 0:
		add(BindInputHash, false, "no expected inputs given")
	case r.Kind != KindRunModel:
		return &MismatchError{Field: BindInputHash, Want: hex.EncodeToString(opts.InputHash), Detail: "an upload proof has no inputs"}
	case !bytes.Equal(opts.InputHash, r.InputHash):
		return &MismatchError{Field: BindInputHash, Want: hex.EncodeToString(opts.InputHash), Got: hex.EncodeToString(r.InputHash)}
	default:
		add(BindInputHash, true, "the payload's input_hash equals the hash of the expected inputs")
	}

	switch {
	case len(opts.OutputHash) == 0:
		add(BindOutputHash, false, "no expected outputs given")
	case r.Kind != KindRunModel:
		return &MismatchError{Field: BindOutputHash, Want: hex.EncodeToString(opts.OutputHash), Detail: "an upload proof has no outputs"}
	default:
		// The outputs are in the signed payload itself: compared through
		// their hash, with or without a receipt (whose output_hash
		// checkReceipt found to be that hash: not computed again).
		got := r.Receipt.GetOutputHash()
		if r.Receipt == nil {
			got = OutputHash(r.Payload.GetRunModelPayload().GetOutputTensors())
		}
		if !bytes.Equal(opts.OutputHash, got) {
			return &MismatchError{Field: BindOutputHash, Want: hex.EncodeToString(opts.OutputHash), Got: hex.EncodeToString(got)}
		}
		add(BindOutputHash, true, "the hash of the payload's outputs equals the expected one")
	}

	switch {
	case len(opts.RequestNonce) == 0 && rc != nil && len(rc.GetNonce()) > 0:
		add(BindNonce, false, fmt.Sprintf("the receipt carries nonce %x; no expected nonce given", rc.GetNonce()))
	case len(opts.RequestNonce) == 0:
		add(BindNonce, false, "no expected nonce given")
	case rc == nil:
		return &MismatchError{Field: BindNonce, Want: hex.EncodeToString(opts.RequestNonce), Detail: noReceipt}
	case subtle.ConstantTimeCompare(opts.RequestNonce, rc.GetNonce()) != 1:
		return &MismatchError{Field: BindNonce, Want: hex.EncodeToString(opts.RequestNonce), Got: hex.EncodeToString(rc.GetNonce())}
	default:
		add(BindNonce, true, "the receipt's nonce equals the expected one")
	}

	switch {
	case rc == nil:
		add(BindReplica, false, noReceipt)
	default:
		add(BindReplica, false, "checked only against hardware evidence")
	}

	when := "the payload has no issued_at"
	if !r.IssuedAt.IsZero() {
		when = "issued_at " + r.IssuedAt.UTC().Format(time.RFC3339Nano) + " is the server host's clock, which the host controls; the TEE has no trusted time"
	}
	if len(opts.RequestNonce) > 0 {
		when += "; the request was served after its nonce was made, if the nonce could not be predicted"
	} else {
		when += "; nothing in the proof bounds when the request was served"
	}
	add(BindTime, false, when)
	return nil
}

// checkReplica compares the receipt's replica id with the one of the
// verified evidence ev. A receipt of another platform, or without a
// replica, fails: a hardware server always names its own, of its own
// platform. A receipt naming another replica of the same platform is
// what a cluster gives when the proof's evidence came from one replica
// and the request ran on another: both hold the attested certificate's
// key, which replicas hand only to TEEs that satisfy the cluster policy,
// so the signature still proves that a replica of that identity served
// it; which one is then not checked, unless require is set, when it fails.
func (r *Result) checkReplica(ev *attest.Evidence, require bool) error {
	rc := r.Receipt
	if rc == nil {
		return nil
	}
	id, source, err := verifier.ReplicaID(ev)
	if errors.Is(err, verifier.ErrNoReplicaID) {
		if len(rc.GetReplicaId()) != 0 {
			return &MismatchError{Field: BindReplica, Got: hex.EncodeToString(rc.GetReplicaId()), Detail: "the proof's evidence names no platform (" + err.Error() + ")"}
		}
		r.setBinding(BindReplica, false, "the evidence names no platform (an SEV-SNP report with a masked CHIP_ID), and the receipt no replica")
		return nil
	}
	if err != nil {
		return fmt.Errorf("proof: %w", err)
	}
	want, got := source+":"+hex.EncodeToString(id), rc.GetReplicaSource()+":"+hex.EncodeToString(rc.GetReplicaId())
	switch {
	case rc.GetReplicaSource() != source || len(rc.GetReplicaId()) == 0:
		return &MismatchError{Field: BindReplica, Want: want, Got: got,
			Detail: "the receipt names no replica of the proof's platform"}
	case !bytes.Equal(rc.GetReplicaId(), id) && require:
		return &MismatchError{Field: BindReplica, Want: want, Got: got,
			Detail: "the receipt names another replica than the one whose evidence the proof carries"}
	case !bytes.Equal(rc.GetReplicaId(), id):
		r.setBinding(BindReplica, false, fmt.Sprintf("the receipt names replica %s, the proof's evidence is of replica %s: a replica holding the same attested key served it (a cluster), but which one is not checked without that replica's evidence", got, want))
		return nil
	}
	r.setBinding(BindReplica, true, fmt.Sprintf("the receipt's replica %s:%x is the platform of the proof's evidence", source, id))
	return nil
}

func (r *Result) setBinding(name string, checked bool, note string) {
	for i := range r.Bindings {
		if r.Bindings[i].Name == name {
			r.Bindings[i] = Binding{Name: name, Checked: checked, Note: note}
		}
	}
}
