package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/blindfold-ai/blindfold/api/prooffiles"
	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/proof"
)

// parseNonce reads a --nonce flag: 1 to attest.MaxNonceBytes bytes in hex.
func parseNonce(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(strings.TrimPrefix(strings.ToLower(s), "0x"))
	if err != nil || attest.CheckNonce(b) != nil {
		return nil, usageErrorf("--nonce must be 1 to %d bytes in hex, got %q", attest.MaxNonceBytes, s)
	}
	return b, nil
}

// requestNonce returns the nonce to send with a signed request: the one
// given, else for a request whose proof is kept, 32 random bytes.
func requestNonce(flagValue string, keepProof bool) ([]byte, error) {
	n, err := parseNonce(flagValue)
	if err != nil || n != nil || !keepProof {
		return n, err
	}
	n = make([]byte, 32)
	rand.Read(n)
	return n, nil
}

// stringsFlag collects a repeated flag's values.
type stringsFlag []string

func (f *stringsFlag) String() string     { return strings.Join(*f, ",") }
func (f *stringsFlag) Set(v string) error { *f = append(*f, v); return nil }

// hashFile returns the SHA-256 of a file's bytes, read as a stream.
func hashFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, withCode(exitIO, fmt.Errorf("reading the model: %w", err))
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, withCode(exitIO, fmt.Errorf("reading the model %s: %w", path, err))
	}
	return h.Sum(nil), nil
}

// outputsHash returns proof.OutputHash of the outputs read from .npy
// files, in order. A .npy file holds no name: output i takes the name of
// the proof's output i (none past its last).
func outputsHash(files []string, p *prooffiles.ResponseProof) ([]byte, error) {
	var names []string
	if pl, err := proof.DecodePayload(p.GetPayload()); err == nil {
		for _, o := range pl.GetRunModelPayload().GetOutputTensors() {
			names = append(names, o.GetInfo().GetIndexName())
		}
	}
	tds := make([]*securedexchange.TensorData, len(files))
	for i, file := range files {
		name := ""
		if i < len(names) {
			name = names[i]
		}
		t, err := readNPYFile(file, name)
		if err != nil {
			return nil, err
		}
		dims := make([]int32, len(t.Shape))
		for j, d := range t.Shape {
			if d > math.MaxInt32 {
				return nil, usageErrorf("output %s: dimension %d is %d, more than the protocol carries", file, j, d)
			}
			dims[j] = int32(d)
		}
		tds[i] = &securedexchange.TensorData{
			Info:      &securedexchange.TensorInfo{Dims: dims, DatumType: securedexchange.DatumTypeEnum(t.DType), Index: int32(i), IndexName: name},
			BytesData: t.Data,
		}
	}
	return proof.OutputHash(tds), nil
}

// printReceipt prints a verified proof's receipt and its bindings.
func printReceipt(w io.Writer, r *proof.Result) {
	if rc := r.Receipt; rc != nil {
		if r.Kind == proof.KindRunModel {
			fmt.Fprintf(w, "model_hash:           %s (receipt)\n", hex.EncodeToString(rc.GetModelHash()))
			fmt.Fprintf(w, "output_hash:          %s (receipt)\n", hex.EncodeToString(rc.GetOutputHash()))
		}
		if len(rc.GetNonce()) > 0 {
			fmt.Fprintf(w, "request nonce:        %s (receipt)\n", hex.EncodeToString(rc.GetNonce()))
		}
		if len(rc.GetReplicaId()) > 0 {
			fmt.Fprintf(w, "replica:              %s:%s (receipt)\n", rc.GetReplicaSource(), hex.EncodeToString(rc.GetReplicaId()))
		}
	} else {
		fmt.Fprintf(w, "receipt:              none (a BlindAI 0.5 or older Blindfold reply)\n")
	}
	fmt.Fprintf(w, "bindings:\n")
	for _, b := range r.Bindings {
		mark := "not checked"
		if b.Checked {
			mark = "checked"
		}
		fmt.Fprintf(w, "  %-12s %-12s %s\n", b.Name, mark, b.Note)
	}
}
