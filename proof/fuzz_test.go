package proof

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/identity"
)

// seedProofs are real simulation proof files: a signed run reply and a
// signed upload reply from a real attested identity.
func seedProofs(tb testing.TB) [][]byte {
	id, err := identity.NewAttested()
	if err != nil {
		tb.Fatal(err)
	}
	outs := []*securedexchange.TensorData{{Info: &securedexchange.TensorInfo{Dims: []int32{2}, IndexName: "y"}, BytesData: make([]byte, 8)}}
	payloads := []*securedexchange.Payload{
		{Header: &securedexchange.PayloadHeader{IssuedAt: timestamppb.Now()}, Payload: &securedexchange.Payload_RunModelPayload{RunModelPayload: &securedexchange.RunModelPayload{
			InputHash: make([]byte, 32), ModelId: "m", InferenceTime: 1,
			OutputTensors: []*securedexchange.TensorData{{Info: &securedexchange.TensorInfo{Dims: []int32{1, 3}, IndexName: "y"}, BytesData: make([]byte, 12)}},
		}}},
		{Header: &securedexchange.PayloadHeader{IssuedAt: timestamppb.Now()}, Payload: &securedexchange.Payload_SendModelPayload{SendModelPayload: &securedexchange.SendModelPayload{
			ModelHash: make([]byte, 32), ModelId: "m", TensorInputs: []*securedexchange.TensorInfo{{Dims: []int32{-1, 4}, IndexName: "x"}},
		}}},
		// With receipts.
		{Header: &securedexchange.PayloadHeader{IssuedAt: timestamppb.Now()}, Payload: &securedexchange.Payload_RunModelPayload{RunModelPayload: &securedexchange.RunModelPayload{
			InputHash: make([]byte, 32), ModelId: "m", OutputTensors: outs,
			Receipt: &securedexchange.Receipt{ModelHash: make([]byte, 32), OutputHash: OutputHash(outs), Nonce: []byte("n"), ReplicaId: make([]byte, 16), ReplicaSource: "simulation"},
		}}},
		{Header: &securedexchange.PayloadHeader{IssuedAt: timestamppb.Now()}, Payload: &securedexchange.Payload_SendModelPayload{SendModelPayload: &securedexchange.SendModelPayload{
			ModelHash: make([]byte, 32), ModelId: "m", Receipt: &securedexchange.Receipt{Nonce: []byte("n"), ReplicaId: make([]byte, 16), ReplicaSource: "simulation"},
		}}},
	}
	var out [][]byte
	for _, p := range payloads {
		b, err := proto.Marshal(p)
		if err != nil {
			tb.Fatal(err)
		}
		file, err := Marshal(NewSimulation(id.DER, b, id.Sign(b)))
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, file)
	}
	return out
}

// TestFuzzSeedsAreRealProofs checks that every committed seed in
// testdata/fuzz/FuzzVerify is a real simulation proof that verifies.
// BLINDFOLD_WRITE_FUZZ_SEEDS=1 rewrites them from fresh ones first.
func TestFuzzSeedsAreRealProofs(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzVerify")
	if os.Getenv("BLINDFOLD_WRITE_FUZZ_SEEDS") != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seedProofs(t) {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "seed-*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no committed seeds in %s (%v)", dir, err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitN(string(raw), "\n", 3)
		if len(lines) < 2 || !strings.HasPrefix(lines[1], "[]byte(") {
			t.Fatalf("%s is not a fuzz corpus file", f)
		}
		data, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		p, err := Unmarshal([]byte(data))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, err := Verify(p, VerifyOptions{AllowSimulation: true}); err != nil {
			t.Fatalf("%s does not verify: %v", f, err)
		}
	}
}

// FuzzVerify parses and verifies arbitrary proof files: never a panic, and
// a proof that verifies must have a payload whose signature checks with the
// key of the certificate it carries.
func FuzzVerify(f *testing.F) {
	// Seeds: the committed real proofs in testdata/fuzz/FuzzVerify (fixed
	// bytes: seeds made afresh here would differ between the fuzzing
	// processes).
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Unmarshal(data)
		if err != nil {
			return
		}
		res, err := Verify(p, VerifyOptions{AllowSimulation: true})
		if err != nil {
			return
		}
		if VerifySignature(res.SigningKey, p.GetPayload(), p.GetSignature()) != nil {
			t.Fatal("Verify accepted a proof whose signature does not check")
		}
	})
}
