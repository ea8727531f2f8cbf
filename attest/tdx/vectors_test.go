package tdx

import (
	"context"
	"encoding/hex"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/internal/testvectors"
	"github.com/blindfold-ai/blindfold/attest/sgx"
)

// dcapAt is a time inside every validity window of the dcap-qvl TDX
// collateral (2025-06-19T10:32:27Z to 2025-07-19T10:00:35Z).
var dcapAt = time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)

// anyTD is a policy that accepts any TD that is not debuggable.
type anyTD struct{}

func (anyTD) Check(r *Result) error {
	if r.TDAttributes&AttrDebug != 0 {
		return errors.New("debug")
	}
	return nil
}

// dcapSigned is the length of the dcap-qvl quotes' signed data; the files
// carry 70 bytes of zero padding after it, which Blindfold refuses.
const dcapSigned = 4936

func dcapEvidence(t *testing.T, quote, collateral string) *attest.Evidence {
	t.Helper()
	q := testvectors.Read(t, "tdx/dcap-qvl/"+quote)
	if len(q) < dcapSigned {
		t.Fatalf("%s: %d bytes", quote, len(q))
	}
	q = q[:dcapSigned]
	c, err := sgx.CollateralFromDCAPQVLJSON(testvectors.Read(t, "tdx/dcap-qvl/"+collateral))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := EncodeCollateral(c)
	if err != nil {
		t.Fatal(err)
	}
	return &attest.Evidence{Type: attest.TypeTDX, Raw: q, Collateral: enc}
}

func verifierAt(t *testing.T, p Policy, now time.Time) *Verifier {
	t.Helper()
	v, err := NewVerifier(p, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRealQuoteVerifies: the dcap-qvl TDX quote verifies against the pinned
// Intel root with its collateral, UpToDate.
func TestRealQuoteVerifies(t *testing.T) {
	ev := dcapEvidence(t, "tdx_quote", "tdx_quote_collateral.json")
	c, err := verifierAt(t, anyTD{}, dcapAt).Verify(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	r := ResultOf(c)
	if r == nil || r.Version != 4 || r.FMSPC != "B0C06F000000" || c.TestRoot {
		t.Fatalf("claims %+v", c)
	}
	if v, _ := c.Get("mrtd"); v != hex.EncodeToString(r.MRTD[:]) || r.MRTD == ([48]byte{}) {
		t.Fatalf("mrtd claim %q, result %x", v, r.MRTD)
	}
	if r.TDAttributes&AttrDebug != 0 {
		t.Fatalf("the production quote is debuggable: %#x", r.TDAttributes)
	}
	t.Logf("mrtd %x\nrtmr0 %x\nmrseam %x\ntd_attributes %#x xfam %#x tee_tcb_svn %x", r.MRTD, r.RTMR[0], r.MRSEAM, r.TDAttributes, r.XFAM, r.TEETCBSVN)
}

// TestRealQuoteRefused: outside the collateral's dates, with an outdated
// TCB, with a test root in place of Intel's, with a policy that refuses
// it, without CRLs, without collateral, with trailing bytes; a version 5
// quote with the version 4 quote's collateral (another platform).
func TestRealQuoteRefused(t *testing.T) {
	ctx := context.Background()
	ev := dcapEvidence(t, "tdx_quote", "tdx_quote_collateral.json")
	for _, tc := range []struct {
		name  string
		at    time.Time
		stale bool
	}{
		{"after nextUpdate", time.Date(2025, 7, 20, 0, 0, 0, 0, time.UTC), true},
		{"before issue", time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), false},
	} {
		_, err := verifierAt(t, anyTD{}, tc.at).Verify(ctx, ev)
		if !errors.Is(err, attest.ErrBadEvidence) || (tc.stale && !errors.Is(err, attest.ErrStaleCollateral)) {
			t.Errorf("%s: %v, want ErrBadEvidence (stale %t)", tc.name, err, tc.stale)
		}
	}
	if _, err := verifierAt(t, anyTD{}, dcapAt).Verify(ctx, dcapEvidence(t, "tdx_quote_outdated", "tdx_quote_outdated_collateral.json")); !errors.Is(err, attest.ErrBadEvidence) {
		t.Errorf("outdated TCB: %v, want ErrBadEvidence", err)
	}
	pki := newPKI(t, dcapAt)
	v, _ := NewVerifier(anyTD{}, Options{Now: func() time.Time { return dcapAt }, TestRoot: pki.root})
	if _, err := v.Verify(ctx, ev); !errors.Is(err, attest.ErrBadEvidence) {
		t.Errorf("wrong root: %v, want ErrBadEvidence", err)
	}
	refuse := policyFunc(func(*Result) error { return errors.New("no") })
	if _, err := verifierAt(t, refuse, dcapAt).Verify(ctx, ev); !errors.Is(err, attest.ErrPolicyMismatch) {
		t.Errorf("refusing policy: %v, want ErrPolicyMismatch", err)
	}
	c, _ := sgx.CollateralFromDCAPQVLJSON(testvectors.Read(t, "tdx/dcap-qvl/tdx_quote_collateral.json"))
	for name, strip := range map[string]func(*sgx.Collateral){
		"no PCK CRL":     func(c *sgx.Collateral) { c.PCKCRL = "" },
		"no root CRL":    func(c *sgx.Collateral) { c.RootCACRL = "" },
		"no TCB info":    func(c *sgx.Collateral) { c.TCBInfo = "" },
		"no QE identity": func(c *sgx.Collateral) { c.QEIdentity = "" },
		"SGX TCB info": func(c *sgx.Collateral) {
			c.TCBInfo = string(testvectors.Read(t, "sgx/oasis/tcb_info_v3_fmspc_00606A000000.json"))
		},
	} {
		cc := *c
		strip(&cc)
		enc, _ := EncodeCollateral(&cc)
		if _, err := verifierAt(t, anyTD{}, dcapAt).Verify(ctx, &attest.Evidence{Type: attest.TypeTDX, Raw: ev.Raw, Collateral: enc}); !errors.Is(err, attest.ErrBadEvidence) {
			t.Errorf("%s: %v, want ErrBadEvidence", name, err)
		}
	}
	if _, err := verifierAt(t, anyTD{}, dcapAt).Verify(ctx, &attest.Evidence{Type: attest.TypeTDX, Raw: ev.Raw}); !errors.Is(err, ErrCollateral) {
		t.Errorf("no collateral, no fetcher: %v, want ErrCollateral", err)
	}
	v5 := testvectors.Read(t, "tdx/go-tdx-guest/quote_v5_sample.dat")
	if _, err := verifierAt(t, anyTD{}, v5At).Verify(ctx, &attest.Evidence{Type: attest.TypeTDX, Raw: v5, Collateral: ev.Collateral}); !errors.Is(err, ErrCollateral) || !errors.Is(err, attest.ErrBadEvidence) {
		t.Errorf("version 5 quote with another platform's collateral: %v, want ErrCollateral", err)
	}
	if _, err := ParseQuote(v5); !errors.Is(err, ErrUnsupported) {
		t.Errorf("ParseQuote of version 5: %v, want ErrUnsupported (it parses version 4)", err)
	}
	for _, f := range []string{"tdx/oasis/quote_v4_tdx_ecdsa_p256_trailing.bin", "tdx/dcap-qvl/tdx_quote", "tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat"} {
		if _, err := ParseQuote(testvectors.Read(t, f)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s (bytes after the signed data): %v, want ErrMalformed", f, err)
		}
	}
	for _, f := range []string{"tdx/oasis/quote_v4_tdx_ecdsa_p256.bin"} {
		if _, err := ParseQuote(testvectors.Read(t, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

type policyFunc func(*Result) error

func (f policyFunc) Check(r *Result) error { return f(r) }

// TestRealQuoteEveryByte: flipping any byte of the quote makes it fail.
func TestRealQuoteEveryByte(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: flipping every byte of a 5 kB quote is left to the full run")
	}
	ev := dcapEvidence(t, "tdx_quote", "tdx_quote_collateral.json")
	v := verifierAt(t, anyTD{}, dcapAt)
	if bad := flipEveryByte(ev, func(e *attest.Evidence) error {
		_, err := v.Verify(context.Background(), e)
		return err
	}); len(bad) > 0 {
		t.Fatalf("bytes %v flipped: the quote still verifies", bad)
	}
}

// flipEveryByte verifies ev with each byte of ev.Raw flipped in turn, on
// every CPU at once, and returns the offsets whose flip still verified.
func flipEveryByte(ev *attest.Evidence, verify func(*attest.Evidence) error) []int {
	var (
		mu     sync.Mutex
		passed []int
		wg     sync.WaitGroup
	)
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				bad := *ev
				bad.Raw = append([]byte(nil), ev.Raw...)
				bad.Raw[i] ^= 0x01
				if verify(&bad) == nil {
					mu.Lock()
					passed = append(passed, i)
					mu.Unlock()
				}
			}
		}()
	}
	for i := range ev.Raw {
		next <- i
	}
	close(next)
	wg.Wait()
	return passed
}
