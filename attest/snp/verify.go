// Package snp verifies AMD SEV-SNP attestation reports for Blindfold, with
// the report format, certificate table and KDS helpers of
// github.com/google/go-sev-guest (abi, kds and the AMD certificates of
// verify/trust; not its verify package, which defines a global
// command-line flag), and holds a guest to the [snp] section of a policy.
//
// Verify checks, and fails closed on any failure: the report's size and
// reserved fields; its signer (VCEK or VLEK) certificate, from the
// evidence's certificate table (the configfs-tsm auxblob) or from AMD's
// KDS through a Getter; the chain VCEK ← ASK ← ARK (VLEK ← ASVK ← ARK),
// with the ARK of Milan, Genoa or Turin pinned by fingerprint and every
// certificate's dates at the verification time; the ARK's CRL (signed by
// the ARK, within its dates) and that the ASK/ASVK is not revoked; that the
// certificate's TCB and chip ID are the report's; and the report's ECDSA
// P-384 signature.
package snp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	sevabi "github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/blindfold-ai/blindfold/attest"
)

// ARK fingerprints (SHA-256 of the DER) of AMD's root keys, pinned.
var arkFingerprints = map[string]string{
	"Milan": "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
	"Genoa": "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
	"Turin": "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
}

// Roots are the certificates of one product line: its ARK, and the ASK
// (which signs VCEKs) and ASVK (which signs VLEKs) it certifies.
type Roots struct {
	// Product is the product line: "Milan", "Genoa", "Turin".
	Product string
	// ARK is the AMD root key's certificate.
	ARK *x509.Certificate
	// ASK signs VCEK certificates; ASVK signs VLEK certificates.
	ASK, ASVK *x509.Certificate
}

// AMDRoots returns the pinned roots of Milan, Genoa and Turin (from
// go-sev-guest's copies of AMD's KDS certificate chains, checked against
// the ARK fingerprints pinned here).
func AMDRoots() ([]*Roots, error) {
	var out []*Roots
	for _, x := range []struct {
		product    string
		vcek, vlek []byte
	}{
		{"Milan", trust.AskArkMilanVcekBytes, trust.AskArkMilanVlekBytes},
		{"Genoa", trust.AskArkGenoaVcekBytes, trust.AskArkGenoaVlekBytes},
		{"Turin", trust.AskArkTurinVcekBytes, trust.AskArkTurinVlekBytes},
	} {
		ask, ark, err := parseChain(x.vcek)
		if err != nil {
			return nil, fmt.Errorf("snp: %s VCEK chain: %w", x.product, err)
		}
		asvk, ark2, err := parseChain(x.vlek)
		if err != nil {
			return nil, fmt.Errorf("snp: %s VLEK chain: %w", x.product, err)
		}
		for _, a := range []*x509.Certificate{ark, ark2} {
			sum := sha256.Sum256(a.Raw)
			if hex.EncodeToString(sum[:]) != arkFingerprints[x.product] {
				return nil, fmt.Errorf("snp: the %s ARK does not have the pinned fingerprint", x.product)
			}
		}
		out = append(out, &Roots{Product: x.product, ARK: ark, ASK: ask, ASVK: asvk})
	}
	return out, nil
}

// parseChain parses a KDS cert_chain: the ASK (or ASVK) then the ARK, in
// PEM; only whitespace may follow.
func parseChain(pemChain []byte) (ask, ark *x509.Certificate, err error) {
	var certs []*x509.Certificate
	rest := pemChain
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, nil, fmt.Errorf("a %s block in the chain", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, nil, err
		}
		certs = append(certs, c)
	}
	if len(bytes.TrimSpace(rest)) != 0 || len(certs) != 2 {
		return nil, nil, fmt.Errorf("want two PEM certificates (ASK, ARK), got %d and %d other bytes", len(certs), len(bytes.TrimSpace(rest)))
	}
	return certs[0], certs[1], nil
}

// Getter fetches a URL of AMD's KDS (a VCEK certificate, a CRL). Use a
// caching implementation: the KDS throttles repeated requests.
type Getter interface {
	Get(ctx context.Context, url string) ([]byte, error)
}

// Policy is what a Verifier holds a guest to: package policy's SNP section
// implements it.
type Policy interface {
	// Check checks a verified report.
	Check(r *Result) error
}

// Options say how reports are verified.
type Options struct {
	// Now returns the verification time; nil means time.Now.
	Now func() time.Time
	// TestRoots replace the pinned AMD roots. FOR TESTS ONLY: evidence
	// that chains to them proves nothing about hardware.
	TestRoots []*Roots
	// Getter fetches from AMD's KDS what the evidence lacks: the VCEK
	// certificate and the ARK's CRL. nil: nothing is fetched.
	Getter Getter
	// CRL is the ARK's CRL (DER) to check the ASK/ASVK against, when not
	// fetched with Getter.
	CRL []byte
	// AllowMissingCRL accepts a report whose ARK CRL is neither given nor
	// fetched: the revocation of the ASK/ASVK is then unknown. Off by
	// default (refused).
	AllowMissingCRL bool
}

// Verifier verifies SEV-SNP evidence (attest.TypeSNP): it implements
// attest.Verifier.
type Verifier struct {
	policy Policy
	opts   Options
	roots  []*Roots
}

// NewVerifier returns a verifier that holds guests to p.
func NewVerifier(p Policy, o Options) (*Verifier, error) {
	if p == nil {
		return nil, fmt.Errorf("snp: %w", attest.ErrNoPolicy)
	}
	roots := o.TestRoots
	if roots == nil {
		var err error
		if roots, err = AMDRoots(); err != nil {
			return nil, err
		}
	}
	return &Verifier{policy: p, opts: o, roots: roots}, nil
}

// Type returns attest.TypeSNP.
func (v *Verifier) Type() string { return attest.TypeSNP }

// Errors of Verify, wrapped in *attest.Error.
var (
	// ErrMalformed means the report or the certificate table does not
	// parse.
	ErrMalformed = errors.New("snp: malformed evidence")
	// ErrCertificate means the signer's certificate is missing, does not
	// chain to a pinned ARK, is revoked, expired, or does not match the
	// report.
	ErrCertificate = errors.New("snp: certificate")
	// ErrCRL means the ARK's CRL is missing, badly signed or out of date.
	ErrCRL = errors.New("snp: CRL")
	// ErrSignature means the report's signature does not verify.
	ErrSignature = errors.New("snp: report signature does not verify")
)

// Verify verifies the report, its certificates and the policy. It does not
// check the report data binding (attest.Registry does).
func (v *Verifier) Verify(ctx context.Context, ev *attest.Evidence) (*attest.Claims, error) {
	const typ = attest.TypeSNP
	if ev == nil || ev.Type != typ {
		return nil, attest.BadEvidence(typ, "evidence of another type", nil)
	}
	now := time.Now()
	if v.opts.Now != nil {
		now = v.opts.Now()
	}
	res, err := v.verify(ctx, ev.Raw, ev.Collateral, now)
	if err != nil {
		var se *staleError
		if errors.As(err, &se) {
			return nil, attest.Stale(typ, attest.ErrBadEvidence, "", err)
		}
		return nil, attest.BadEvidence(typ, "", err)
	}
	if err := v.policy.Check(res); err != nil {
		return nil, attest.PolicyMismatch(typ, "", err)
	}
	return Claims(res, v.opts.TestRoots != nil), nil
}

type staleError struct{ msg string }

func (e *staleError) Error() string { return "snp: stale: " + e.msg }

func (v *Verifier) verify(ctx context.Context, raw, certTable []byte, now time.Time) (*Result, error) {
	if len(raw) != sevabi.ReportSize {
		return nil, fmt.Errorf("%w: report is %d bytes, want %d", ErrMalformed, len(raw), sevabi.ReportSize)
	}
	rep, err := sevabi.ReportToProto(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	info, err := sevabi.ParseSignerInfo(rep.GetSignerInfo())
	if err != nil {
		return nil, fmt.Errorf("%w: signer info: %v", ErrMalformed, err)
	}
	var guid, signer string
	switch info.SigningKey {
	case sevabi.VcekReportSigner:
		guid, signer = sevabi.VcekGUID, "VCEK"
	case sevabi.VlekReportSigner:
		guid, signer = sevabi.VlekGUID, "VLEK"
	default:
		return nil, fmt.Errorf("%w: the report is signed by key %v, not a VCEK or VLEK", ErrCertificate, info.SigningKey)
	}
	cert, err := v.signerCert(ctx, rep, certTable, guid, signer)
	if err != nil {
		return nil, err
	}
	roots, err := v.chain(cert, signer, now)
	if err != nil {
		return nil, err
	}
	crlChecked, err := v.crl(ctx, roots, signer, now)
	if err != nil {
		return nil, err
	}
	ext, err := kds.CertificateExtensions(cert, info.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %s extensions: %v", ErrCertificate, signer, err)
	}
	if uint64(ext.TCBVersion) != rep.GetReportedTcb() {
		return nil, fmt.Errorf("%w: the %s is for TCB %#x, the report's reported TCB is %#x", ErrCertificate, signer, uint64(ext.TCBVersion), rep.GetReportedTcb())
	}
	if signer == "VCEK" && !bytes.Equal(ext.HWID, rep.GetChipId()) {
		return nil, fmt.Errorf("%w: the VCEK is for chip %x, the report's is %x", ErrCertificate, ext.HWID, rep.GetChipId())
	}
	der, err := sevabi.ReportToSignatureDER(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	if err := cert.CheckSignature(x509.ECDSAWithSHA384, sevabi.SignedComponent(raw), der); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	res := resultOf(rep, roots.Product, signer, now)
	res.CRLChecked = crlChecked
	return res, nil
}

// signerCert returns the VCEK or VLEK: from the certificate table, else
// from the KDS (VCEK only).
func (v *Verifier) signerCert(ctx context.Context, rep *spb.Report, certTable []byte, guid, signer string) (*x509.Certificate, error) {
	var der []byte
	if len(certTable) > 0 {
		var t sevabi.CertTable
		if err := t.Unmarshal(certTable); err != nil {
			return nil, fmt.Errorf("%w: certificate table: %v", ErrMalformed, err)
		}
		der, _ = t.GetByGUIDString(guid)
	}
	if len(der) == 0 {
		if signer != "VCEK" || v.opts.Getter == nil {
			return nil, fmt.Errorf("%w: no %s certificate came with the report, and none can be fetched", ErrCertificate, signer)
		}
		product := productOfReport(rep)
		if product == "" {
			return nil, fmt.Errorf("%w: the report does not say its product line; give the VCEK with it", ErrCertificate)
		}
		var err error
		if der, err = v.opts.Getter.Get(ctx, kds.VCEKCertURL(product, rep.GetChipId(), kds.TCBVersion(rep.GetReportedTcb()))); err != nil {
			return nil, fmt.Errorf("%w: fetching the VCEK: %v", ErrCertificate, err)
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCertificate, signer, err)
	}
	return cert, nil
}

// productOfReport returns the product line from a version 3+ report's
// CPUID, or "".
func productOfReport(rep *spb.Report) string {
	if rep.GetVersion() < 3 || rep.GetCpuid1EaxFms() == 0 {
		return ""
	}
	switch p := kds.ProductLineFromFms(rep.GetCpuid1EaxFms()); p {
	case "Milan", "Genoa", "Turin":
		return p
	}
	return ""
}

// chain finds the product whose ASK (or ASVK) issued cert and verifies
// cert ← ASK ← ARK at now.
func (v *Verifier) chain(cert *x509.Certificate, signer string, now time.Time) (*Roots, error) {
	var lastErr error
	for _, r := range v.roots {
		inter := r.ASK
		if signer == "VLEK" {
			inter = r.ASVK
		}
		if inter == nil || r.ARK == nil || cert.CheckSignatureFrom(inter) != nil {
			continue
		}
		roots, inters := x509.NewCertPool(), x509.NewCertPool()
		roots.AddCert(r.ARK)
		inters.AddCert(inter)
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			lastErr = err
			continue
		}
		return r, nil
	}
	if lastErr != nil {
		return nil, fmt.Errorf("%w: the %s does not chain to a pinned ARK at %s: %v", ErrCertificate, signer, now.UTC().Format(time.RFC3339), lastErr)
	}
	return nil, fmt.Errorf("%w: the %s (issuer %q) is not signed by the ASK or ASVK of any pinned product", ErrCertificate, signer, cert.Issuer.CommonName)
}

// crl checks the ARK's CRL and that the intermediate is not revoked. It
// returns false when Options.AllowMissingCRL let the CRL be absent.
func (v *Verifier) crl(ctx context.Context, r *Roots, signer string, now time.Time) (bool, error) {
	der := v.opts.CRL
	if len(der) == 0 && v.opts.Getter != nil {
		key := sevabi.VcekReportSigner
		if signer == "VLEK" {
			key = sevabi.VlekReportSigner
		}
		b, err := v.opts.Getter.Get(ctx, kds.CrlLinkByKey(r.Product, key))
		if err != nil {
			return false, fmt.Errorf("%w: fetching the %s ARK's CRL: %v", ErrCRL, r.Product, err)
		}
		der = b
	}
	if len(der) == 0 {
		if v.opts.AllowMissingCRL {
			return false, nil
		}
		return false, fmt.Errorf("%w: no CRL of the %s ARK was given or fetched", ErrCRL, r.Product)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrCRL, err)
	}
	if err := crl.CheckSignatureFrom(r.ARK); err != nil {
		return false, fmt.Errorf("%w: not signed by the %s ARK: %v", ErrCRL, r.Product, err)
	}
	if now.Before(crl.ThisUpdate) {
		return false, &staleError{fmt.Sprintf("the ARK CRL is not valid before %s", crl.ThisUpdate.UTC().Format(time.RFC3339))}
	}
	if !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate) {
		return false, &staleError{fmt.Sprintf("the ARK CRL expired at its next update, %s", crl.NextUpdate.UTC().Format(time.RFC3339))}
	}
	for _, inter := range []*x509.Certificate{r.ASK, r.ASVK} {
		if inter == nil {
			continue
		}
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(inter.SerialNumber) == 0 {
				return false, fmt.Errorf("%w: the %s %s was revoked at %s", ErrCertificate, r.Product, inter.Subject.CommonName, e.RevocationTime.UTC().Format(time.RFC3339))
			}
		}
	}
	return true, nil
}

// TCBOf returns the security patch levels of a TCB version of product.
// Turin's layout differs from Milan's and Genoa's (it has an FMC level
// first).
func TCBOf(product string, v uint64) TCB {
	b := func(i int) uint8 { return uint8(v >> (8 * i)) }
	if product == "Turin" {
		return TCB{Bootloader: b(1), TEE: b(2), SNP: b(3), Microcode: b(7)}
	}
	return TCB{Bootloader: b(0), TEE: b(1), SNP: b(6), Microcode: b(7)}
}

func resultOf(rep *spb.Report, product, signer string, now time.Time) *Result {
	r := &Result{
		Version: rep.GetVersion(), Product: product, Signer: signer,
		GuestPolicy: rep.GetPolicy(), VMPL: rep.GetVmpl(),
		ReportedTCB:   TCBOf(product, rep.GetReportedTcb()),
		CurrentTCB:    TCBOf(product, rep.GetCurrentTcb()),
		CommittedTCB:  TCBOf(product, rep.GetCommittedTcb()),
		FirmwareMajor: uint8(rep.GetCurrentMajor()), FirmwareMinor: uint8(rep.GetCurrentMinor()), FirmwareBuild: uint8(rep.GetCurrentBuild()),
		VerifiedAt: now,
	}
	copy(r.Measurement[:], rep.GetMeasurement())
	copy(r.HostData[:], rep.GetHostData())
	copy(r.FamilyID[:], rep.GetFamilyId())
	copy(r.ImageID[:], rep.GetImageId())
	copy(r.ReportData[:], rep.GetReportData())
	copy(r.ChipID[:], rep.GetChipId())
	return r
}

// Claims returns the claims of a verified report.
func Claims(r *Result, testRoot bool) *attest.Claims {
	h := func(b []byte) string { return hex.EncodeToString(b) }
	list := []attest.Claim{
		{Name: "measurement", Value: h(r.Measurement[:])},
		{Name: "product", Value: r.Product},
		{Name: "signer", Value: r.Signer},
		{Name: "guest_policy", Value: fmt.Sprintf("%#x (debug %t, migration agent %t)", r.GuestPolicy, r.GuestPolicy&PolicyDebug != 0, r.GuestPolicy&PolicyMigrateMA != 0)},
		{Name: "vmpl", Value: fmt.Sprint(r.VMPL)},
		{Name: "reported_tcb", Value: fmt.Sprintf("bootloader %d, tee %d, snp %d, microcode %d", r.ReportedTCB.Bootloader, r.ReportedTCB.TEE, r.ReportedTCB.SNP, r.ReportedTCB.Microcode)},
		{Name: "firmware", Value: fmt.Sprintf("%d.%d build %d", r.FirmwareMajor, r.FirmwareMinor, r.FirmwareBuild)},
		{Name: "host_data", Value: h(r.HostData[:])},
		{Name: "family_id", Value: h(r.FamilyID[:])},
		{Name: "image_id", Value: h(r.ImageID[:])},
		{Name: "verified_at", Value: r.VerifiedAt.UTC().Format(time.RFC3339)},
	}
	return &attest.Claims{Type: attest.TypeSNP, ReportData: r.ReportData, List: list, TestRoot: testRoot, Details: r}
}

// ResultOf returns the SEV-SNP result of verified claims, or nil.
func ResultOf(c *attest.Claims) *Result {
	if c == nil {
		return nil
	}
	r, _ := c.Details.(*Result)
	return r
}
