package webverify_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/blindfold-ai/blindfold/internal/webverify"
	"github.com/blindfold-ai/blindfold/policy"
	"github.com/blindfold-ai/blindfold/proof"
)

// blindAIProofsEnv names a folder with BlindAI's own hardware proofs
// (BlindAI 0.5's client tests, client/tests/exec_run.proof and
// exec_upload.proof), the policy.toml of the enclave that made them and,
// in at.txt, an RFC 3339 time inside their collateral's validity. Those
// files are not among the test vectors this project has; when the folder
// is given, the browser test and the flip test run on them too.
const blindAIProofsEnv = "BLINDFOLD_BLINDAI_PROOFS"

// blindAIProofs is what blindAIProofsEnv names.
type blindAIProofs struct {
	proofs []string // paths of the *.proof files
	policy string   // path of policy.toml
	at     time.Time
}

// loadBlindAIProofs reads blindAIProofsEnv's folder, or returns nil when
// the variable is not set.
func loadBlindAIProofs(t *testing.T) *blindAIProofs {
	t.Helper()
	dir := os.Getenv(blindAIProofsEnv)
	if dir == "" {
		return nil
	}
	proofs, err := filepath.Glob(filepath.Join(dir, "*.proof"))
	if err != nil || len(proofs) == 0 {
		t.Fatalf("%s=%s holds no *.proof file", blindAIProofsEnv, dir)
	}
	slices.Sort(proofs)
	at, err := os.ReadFile(filepath.Join(dir, "at.txt"))
	if err != nil {
		t.Fatalf("%s: at.txt (an RFC 3339 time inside the proofs' collateral validity): %v", blindAIProofsEnv, err)
	}
	when, err := time.Parse(time.RFC3339, strings.TrimSpace(string(at)))
	if err != nil {
		t.Fatalf("%s: at.txt: %v", blindAIProofsEnv, err)
	}
	pol := filepath.Join(dir, "policy.toml")
	if _, err := os.Stat(pol); err != nil {
		t.Fatalf("%s: policy.toml: %v", blindAIProofsEnv, err)
	}
	return &blindAIProofs{proofs: proofs, policy: pol, at: when}
}

// tamperPayload returns a copy of a proof file with the last byte of its
// signed payload changed.
func tamperPayload(t *testing.T, raw []byte) []byte {
	t.Helper()
	p, err := proof.Unmarshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	pay := bytes.Clone(p.GetPayload())
	if len(pay) == 0 {
		t.Fatal("the proof has no payload")
	}
	pay[len(pay)-1] ^= 0x01
	p.Payload = pay
	b, err := proof.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBlindAIProofsEveryByteFlipped runs, when BlindAI's own hardware
// proofs are given (blindAIProofsEnv), what the browser runs on them
// (Verify: VERIFIED at their date), and flips every byte of each in turn:
// every flip must be refused by proof.Verify, or decode to the same proof,
// or change only the collateral's informational version.
func TestBlindAIProofsEveryByteFlipped(t *testing.T) {
	b := loadBlindAIProofs(t)
	if b == nil {
		t.Skipf("BlindAI's own hardware proofs are not part of this project's test vectors: set %s to a folder with them, their policy.toml and at.txt", blindAIProofsEnv)
	}
	if raceEnabled {
		t.Skip("one verification per byte is too slow under the race detector; scripts/test.sh runs this test in its step without -race")
	}
	pol, err := policy.Load(b.policy)
	if err != nil {
		t.Fatal(err)
	}
	polText, err := os.ReadFile(b.policy)
	if err != nil {
		t.Fatal(err)
	}
	opts := proof.VerifyOptions{Policy: pol, Now: func() time.Time { return b.at }}
	for _, path := range b.proofs {
		t.Run(filepath.Base(path), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if r := webverify.Verify(raw, polText, webverify.Options{Now: b.at}); r.Verdict != webverify.Verified {
				t.Fatalf("the browser's verifier says %s: %s", r.Verdict, r.Summary)
			}
			orig, err := proof.Unmarshal(raw)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := proof.Verify(orig, opts); err != nil {
				t.Fatalf("the proof as given: %v", err)
			}
			refused, same, version := 0, 0, 0
			for i := range raw {
				flipped := bytes.Clone(raw)
				flipped[i] ^= 0x01
				p, err := proof.Unmarshal(flipped)
				if err != nil {
					refused++
					continue
				}
				if _, err := proof.Verify(p, opts); err != nil {
					refused++
					continue
				}
				if proto.Equal(p, orig) {
					same++
					continue
				}
				if c := p.GetAttestation().GetCollateral(); c != nil {
					c.Version = orig.GetAttestation().GetCollateral().GetVersion()
					if proto.Equal(p, orig) {
						version++
						continue
					}
				}
				t.Errorf("byte %d (of %d) flipped: the proof still verifies and differs from the original", i, len(raw))
			}
			t.Logf("%d bytes: %d flips refused, %d decode to the same proof, %d change only the collateral version", len(raw), refused, same, version)
		})
	}
}
