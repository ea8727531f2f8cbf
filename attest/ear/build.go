package ear

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/sgx"
	"github.com/blindfold-ai/blindfold/attest/sgx/abi"
	"github.com/blindfold-ai/blindfold/attest/snp"
	"github.com/blindfold-ai/blindfold/attest/tdx"
	"github.com/blindfold-ai/blindfold/policy"
	"github.com/blindfold-ai/blindfold/proof"
)

// DefaultDeveloper is the developer of ear.verifier-id when Options leave
// it empty.
const DefaultDeveloper = "https://github.com/blindfold-ai/blindfold"

// Options say who writes a result, when, and against what policy.
type Options struct {
	// Now returns the issue time (iat); nil means time.Now.
	Now func() time.Time
	// Verifier names the verifier. An empty Developer is DefaultDeveloper;
	// an empty Build is "blindfold" and the module version of the binary.
	Verifier VerifierID
	// Policy is the policy the evidence was held to. It is required for
	// hardware evidence: the claims are checked against it again, and
	// ear.appraisal-policy-id names it.
	Policy *policy.Policy
	// Nonce is the client's nonce that the evidence binds, or nil. Nonces
	// of 6 bytes or more go in eat_nonce (base64url); shorter ones, which
	// eat_nonce cannot hold, only in the platform's annotated evidence.
	Nonce []byte
}

func (o *Options) verifier() VerifierID {
	v := o.Verifier
	if v.Developer == "" {
		v.Developer = DefaultDeveloper
	}
	if v.Build == "" {
		v.Build = "blindfold"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v.Build += " " + bi.Main.Version
		}
	}
	return v
}

// PolicyID returns the ear.appraisal-policy-id of p: "blindfold-policy:"
// and the SHA-256 of the policy in its canonical form (what "blindfold
// policy show" prints), so that the same rules give the same identifier
// however the file was written.
func PolicyID(p *policy.Policy) string {
	sum := sha256.Sum256(p.TOML())
	return "blindfold-policy:sha256:" + hex.EncodeToString(sum[:])
}

// newResult returns a result with the header claims and no submods.
func newResult(opts *Options) *Result {
	r := &Result{Profile: Profile, IssuedAt: nowUnix(opts.Now), VerifierID: opts.verifier(), Submods: map[string]*Appraisal{}}
	if len(opts.Nonce) >= 6 {
		r.Nonce = base64.RawURLEncoding.EncodeToString(opts.Nonce)
	}
	return r
}

// Warnings written into appraisals.
const (
	warnSimulation = "SIMULATION: no TEE; the evidence proves nothing and protects nothing"
	warnTestRoot   = "TEST ROOT: the evidence was verified against a test root CA, not the vendor's; it proves nothing about hardware"
	warnNoCRL      = "revocation not checked: the evidence was verified without its CRLs"
)

// FromVerified returns the result of verified evidence, as a connected
// client or a proof verifier holds it (attest.Registry.Verify): the
// appraisals of FromClaims, the raw evidence, and the attested
// certificate and signing key in the workload's annotated evidence.
func FromVerified(v *attest.Verified, opts Options) (*Result, error) {
	if v == nil || v.Claims == nil {
		return nil, errors.New("ear: no verified evidence")
	}
	r, err := FromClaims(v.Claims, opts)
	if err != nil {
		return nil, err
	}
	if v.Evidence != nil && len(v.Evidence.Raw) > 0 {
		r.RawEvidence = append([]byte(nil), v.Evidence.Raw...)
	}
	a := r.Submods[workloadName(v.Claims.Type)]
	if a == nil {
		a = r.Submods[SubmodPlatform]
	}
	if len(v.CertificateDER) > 0 {
		sum := sha256.Sum256(v.CertificateDER)
		a.Evidence["attested-certificate-sha256"] = hex.EncodeToString(sum[:])
	}
	if len(v.SigningKey) > 0 {
		a.Evidence["signing-key-ed25519"] = hex.EncodeToString(v.SigningKey)
	}
	return r, nil
}

// workloadName returns the submod of the workload of an evidence type.
func workloadName(typ string) string {
	switch typ {
	case attest.TypeSGXDCAP:
		return SubmodEnclave
	case attest.TypeTDX, attest.TypeSNP:
		return SubmodVM
	}
	return ""
}

// FromClaims returns the result of claims that a verifier returned for
// evidence it verified. Hardware claims are checked against opts.Policy
// again (which is required): claims it refuses give contraindicated, so a
// result is never more trustworthy than the policy's verdict. Simulation
// claims and claims verified against a test root give none, with a
// warning.
func FromClaims(c *attest.Claims, opts Options) (*Result, error) {
	if c == nil {
		return nil, errors.New("ear: no claims")
	}
	r := newResult(&opts)
	if c.Simulation {
		if c.Type != attest.TypeSimulation {
			return nil, fmt.Errorf("ear: %s claims marked as simulation", c.Type)
		}
		r.Submods[SubmodPlatform] = &Appraisal{
			Status:   StatusNone,
			Evidence: map[string]any{"type": attest.TypeSimulation, "simulation": true},
			Warnings: []string{warnSimulation},
		}
		addNonce(r.Submods[SubmodPlatform], opts.Nonce)
		return r, nil
	}
	if opts.Policy == nil {
		return nil, fmt.Errorf("ear: %w", attest.ErrNoPolicy)
	}
	var platform, workload *Appraisal
	var verdict error
	switch c.Type {
	case attest.TypeSGXDCAP:
		res := sgx.ResultOf(c)
		if res == nil || res.ReportBody == nil {
			return nil, errors.New("ear: sgx-dcap claims without an SGX result")
		}
		platform, workload = sgxAppraisals(res)
		verdict = opts.Policy.Check(res)
		if verdict == nil {
			if why, err := opts.Policy.ExplainStatus(res.Status, res.AdvisoryIDs); err == nil {
				platform.Evidence["policy-verdict"] = "passed: " + why
			}
		}
	case attest.TypeTDX:
		res := tdx.ResultOf(c)
		if res == nil {
			return nil, errors.New("ear: tdx claims without a TDX result")
		}
		platform, workload = tdxAppraisals(res)
		verdict = opts.Policy.TDX.Check(res)
	case attest.TypeSNP:
		res := snp.ResultOf(c)
		if res == nil {
			return nil, errors.New("ear: sev-snp claims without an SEV-SNP result")
		}
		platform, workload = snpAppraisals(res)
		verdict = opts.Policy.SNP.Check(res)
	default:
		return nil, fmt.Errorf("ear: claims of the unknown evidence type %q", c.Type)
	}
	platform.Evidence["report-data"] = hex.EncodeToString(c.ReportData[:])
	platform.Evidence["root-ca"] = rootCA(c)
	addNonce(platform, opts.Nonce)
	id := PolicyID(opts.Policy)
	for _, a := range []*Appraisal{platform, workload} {
		a.PolicyID = id
		a.Status = a.TrustVector.worst()
		if a.Status == StatusNone {
			// Every verified component makes claims; none left means the
			// mapping has no entry for what was verified.
			return nil, errors.New("ear: no trustworthiness claim could be made")
		}
	}
	if verdict != nil {
		refuse(platform, workload, verdict)
	}
	if c.TestRoot {
		for _, a := range []*Appraisal{platform, workload} {
			if a.Status != StatusContraindicated {
				a.Status, a.TrustVector = StatusNone, nil
			}
			a.Warnings = append(a.Warnings, warnTestRoot)
		}
	}
	r.Submods[SubmodPlatform] = platform
	r.Submods[workloadName(c.Type)] = workload
	return r, nil
}

// rootCA names the root CA the claims' evidence was verified against.
func rootCA(c *attest.Claims) string {
	switch {
	case c.TestRoot:
		return "TEST ROOT CA, not the vendor's (proves nothing about hardware)"
	case c.Type == attest.TypeSNP:
		return "AMD root key (pinned)"
	}
	return "Intel SGX Root CA (pinned)"
}

func addNonce(a *Appraisal, nonce []byte) {
	if len(nonce) > 0 {
		a.Evidence["nonce"] = hex.EncodeToString(nonce)
	}
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// sgxAppraisals maps a verified SGX quote. The platform's hardware and
// configuration claims follow the TCB status; any open advisory is a
// known vulnerability.
func sgxAppraisals(res *sgx.Result) (platform, enclave *Appraisal) {
	hw, cfg := genuineHardware, approvedConfig
	switch res.Status {
	case sgx.UpToDate:
	case sgx.SWHardeningNeeded, sgx.OutOfDate:
		hw = unsafeHardware
	case sgx.ConfigurationNeeded:
		cfg = unsafeConfig
	case sgx.ConfigurationAndSWHardeningNeeded, sgx.OutOfDateConfigurationNeeded:
		hw, cfg = unsafeHardware, unsafeConfig
	default: // Revoked, or a status this package does not know
		hw = contraindicatedHardware
	}
	if len(res.AdvisoryIDs) > 0 && hw.Tier().rank() < unsafeHardware.Tier().rank() {
		hw = unsafeHardware
	}
	id := trustworthyInstance
	var warnings []string
	if !res.CRLsChecked {
		// Revocation unknown: the PCK certificate may be revoked.
		id = noClaim
		cfg = max(cfg, unsafeConfig)
		warnings = append(warnings, warnNoCRL)
	}
	advisories := res.AdvisoryIDs
	if advisories == nil {
		advisories = []string{}
	}
	platform = &Appraisal{
		TrustVector: &TrustVector{InstanceIdentity: id, Hardware: hw, Configuration: cfg},
		Evidence: map[string]any{
			"type":                          attest.TypeSGXDCAP,
			"tcb-status":                    string(res.Status),
			"platform-tcb-status":           string(res.PlatformStatus),
			"qe-tcb-status":                 string(res.QEStatus),
			"advisory-ids":                  advisories,
			"fmspc":                         strings.ToUpper(hex.EncodeToString(res.FMSPC[:])),
			"pce-id":                        strings.ToUpper(hex.EncodeToString(res.PCEID[:])),
			"tcb-evaluation-data-number":    strconv.FormatUint(uint64(res.TCBEvaluationDataNumber), 10),
			"collateral-issued":             rfc3339(res.CollateralIssued),
			"collateral-next-update":        rfc3339(res.CollateralNextUpdate),
			"crls-checked":                  res.CRLsChecked,
			"pck-chain":                     "verified to the root CA",
			"verified-at":                   rfc3339(res.VerifiedAt),
			"qe-identity-evaluation-number": strconv.FormatUint(uint64(res.QEIdentityTCBEvaluationDataNumber), 10),
		},
		Warnings: warnings,
	}
	if !res.TCBDate.IsZero() {
		platform.Evidence["tcb-date"] = rfc3339(res.TCBDate)
	}
	rb := res.ReportBody
	debugOn := rb.AttributesFlags&abi.AttributeDebug != 0
	mem := encryptedMemory
	if debugOn {
		mem = visibleMemory
	}
	enclave = &Appraisal{
		TrustVector: &TrustVector{Executables: approvedRuntime, Configuration: approvedConfig, RuntimeOpaque: mem},
		Evidence: map[string]any{
			"mrenclave":        hex.EncodeToString(rb.MRENCLAVE[:]),
			"mrsigner":         hex.EncodeToString(rb.MRSIGNER[:]),
			"isv-prod-id":      strconv.FormatUint(uint64(rb.ISVProdID), 10),
			"isv-svn":          strconv.FormatUint(uint64(rb.ISVSVN), 10),
			"attributes-flags": fmt.Sprintf("%#x", rb.AttributesFlags),
			"attributes-xfrm":  fmt.Sprintf("%#x", rb.AttributesXFRM),
			"misc-select":      fmt.Sprintf("%#x", rb.MiscSelect),
			"debug":            debugOn,
		},
	}
	return platform, enclave
}

// tdxAppraisals maps a verified TDX quote. Package attest/tdx accepts only
// an UpToDate platform, QE and TDX module, with CRLs.
func tdxAppraisals(res *tdx.Result) (platform, vm *Appraisal) {
	platform = &Appraisal{
		TrustVector: &TrustVector{InstanceIdentity: trustworthyInstance, Hardware: genuineHardware, Configuration: approvedConfig},
		Evidence: map[string]any{
			"type":        attest.TypeTDX,
			"tcb-status":  string(sgx.UpToDate),
			"fmspc":       strings.ToUpper(res.FMSPC),
			"tee-tcb-svn": hex.EncodeToString(res.TEETCBSVN[:]),
			"mrseam":      hex.EncodeToString(res.MRSEAM[:]),
			"pck-chain":   "verified to the root CA, with its CRLs",
			"verified-at": rfc3339(res.VerifiedAt),
		},
	}
	debugOn := res.TDAttributes&tdx.AttrDebug != 0
	mem := encryptedMemory
	if debugOn {
		mem = visibleMemory
	}
	ev := map[string]any{
		"mrtd":            hex.EncodeToString(res.MRTD[:]),
		"mr-config-id":    hex.EncodeToString(res.MRConfigID[:]),
		"mr-owner":        hex.EncodeToString(res.MROwner[:]),
		"mr-owner-config": hex.EncodeToString(res.MROwnerConfig[:]),
		"td-attributes":   fmt.Sprintf("%#x", res.TDAttributes),
		"xfam":            fmt.Sprintf("%#x", res.XFAM),
		"debug":           debugOn,
	}
	for i, r := range res.RTMR {
		ev["rtmr"+strconv.Itoa(i)] = hex.EncodeToString(r[:])
	}
	vm = &Appraisal{TrustVector: &TrustVector{Executables: approvedRuntime, Configuration: approvedConfig, RuntimeOpaque: mem}, Evidence: ev}
	return platform, vm
}

// snpAppraisals maps a verified SEV-SNP report: the VCEK or VLEK chain to
// AMD's root, and the TCB the policy holds it to.
func snpAppraisals(res *snp.Result) (platform, vm *Appraisal) {
	tcb := func(t snp.TCB) string {
		return fmt.Sprintf("bootloader %d, tee %d, snp %d, microcode %d", t.Bootloader, t.TEE, t.SNP, t.Microcode)
	}
	id, cfg := trustworthyInstance, approvedConfig
	var warnings []string
	if !res.CRLChecked {
		// Revocation unknown: the ASK or ASVK may be revoked.
		id, cfg = noClaim, unsafeConfig
		warnings = []string{warnNoCRL}
	}
	platform = &Appraisal{
		Warnings:    warnings,
		TrustVector: &TrustVector{InstanceIdentity: id, Hardware: genuineHardware, Configuration: cfg},
		Evidence: map[string]any{
			"type":          attest.TypeSNP,
			"product":       res.Product,
			"signer":        res.Signer,
			"reported-tcb":  tcb(res.ReportedTCB),
			"current-tcb":   tcb(res.CurrentTCB),
			"committed-tcb": tcb(res.CommittedTCB),
			"firmware":      fmt.Sprintf("%d.%d.%d", res.FirmwareMajor, res.FirmwareMinor, res.FirmwareBuild),
			"crls-checked":  res.CRLChecked,
			"key-chain":     "verified to the root CA",
			"verified-at":   rfc3339(res.VerifiedAt),
		},
	}
	mem := encryptedMemory
	if res.GuestPolicy&(snp.PolicyDebug|snp.PolicyMigrateMA) != 0 {
		// The host, or a migration agent, can read the guest.
		mem = visibleMemory
	}
	vm = &Appraisal{
		TrustVector: &TrustVector{Executables: approvedRuntime, Configuration: approvedConfig, RuntimeOpaque: mem},
		Evidence: map[string]any{
			"measurement":  hex.EncodeToString(res.Measurement[:]),
			"host-data":    hex.EncodeToString(res.HostData[:]),
			"family-id":    hex.EncodeToString(res.FamilyID[:]),
			"image-id":     hex.EncodeToString(res.ImageID[:]),
			"guest-policy": fmt.Sprintf("%#x", res.GuestPolicy),
			"vmpl":         strconv.FormatUint(uint64(res.VMPL), 10),
			"debug":        res.GuestPolicy&snp.PolicyDebug != 0,
		},
	}
	return platform, vm
}

// refuse marks both appraisals contraindicated for err, with the claim
// that names what was refused where the error says it.
func refuse(platform, workload *Appraisal, err error) {
	for _, a := range []*Appraisal{platform, workload} {
		if a == nil {
			continue
		}
		a.Status = StatusContraindicated
		if a.TrustVector == nil {
			a.TrustVector = &TrustVector{}
		}
		a.Warnings = append(a.Warnings, "refused: "+err.Error())
	}
	var ae *attest.Error
	isAttest := errors.As(err, &ae)
	var me *policy.MismatchError
	switch {
	case errors.As(err, &me):
		switch me.Field {
		case policy.KeyMREnclave, policy.KeyMRSigner, policy.KeyISVProdID, policy.KeyMinISVSVN,
			policy.KeyTDXMRTD, policy.KeyTDXRTMR0, policy.KeyTDXRTMR1, policy.KeyTDXRTMR2, policy.KeyTDXRTMR3,
			policy.KeySNPMeasurement, policy.KeySNPHostData, policy.KeySNPFamilyID, policy.KeySNPImageID:
			if workload != nil {
				workload.TrustVector.Executables = unrecognizedRuntime
			}
		case policy.KeyMiscSelect, policy.KeyAttributesFlags, policy.KeyAttributesXFRM,
			policy.KeyTDXAttributes, policy.KeyTDXXFAM, policy.KeyTDXMRConfigID, policy.KeyTDXMROwner, policy.KeyTDXMROwnerConfig, policy.KeyTDXMRServiceTD, policy.KeySNPVMPL:
			if workload != nil {
				workload.TrustVector.Configuration = unsupportableConfig
			}
		case policy.KeyAllowDebug, policy.KeyTDXDebug, policy.KeySNPDebug, policy.KeySNPMigrationMA:
			if workload != nil {
				workload.TrustVector.RuntimeOpaque = visibleMemory
			}
		case policy.KeyAcceptedTCBStatuses, policy.KeyAcceptedAdvisoryIDs, policy.KeySNPMinTCB, policy.KeySNPMinFirmware, policy.KeyTDXMinTEETCBSVN, policy.KeyTDXMRSEAM:
			platform.TrustVector.Hardware = contraindicatedHardware
		case policy.KeyMinTCBEvaluationDataNumber, policy.KeyMaxCollateralAge:
			platform.TrustVector.Configuration = unsupportableConfig
		}
	case isAttest && errors.Is(err, attest.ErrNotAccepted):
		platform.TrustVector.Hardware = unrecognizedHardware
	case isAttest && errors.Is(err, attest.ErrBadEvidence) && !errors.Is(err, attest.ErrStaleCollateral):
		platform.TrustVector.InstanceIdentity = cryptoValidationFailed
	}
	for _, a := range []*Appraisal{platform, workload} {
		if a != nil && *a.TrustVector == (TrustVector{}) {
			a.TrustVector = nil
		}
	}
}

// Refused returns the result of evidence that was refused with err (an
// attest.Registry or Verifier error): every appraisal contraindicated,
// with the refusal in its warnings and, where the error names it, the
// claim refused. The workload's appraisal is written when the error names
// the evidence type.
func Refused(err error, opts Options) *Result {
	if err == nil {
		err = errors.New("no verdict")
	}
	r := newResult(&opts)
	platform := &Appraisal{Evidence: map[string]any{}}
	var workload *Appraisal
	var ae *attest.Error
	if errors.As(err, &ae) && workloadName(ae.Type) != "" {
		platform.Evidence["type"] = ae.Type
		workload = &Appraisal{}
	}
	addNonce(platform, opts.Nonce)
	if len(platform.Evidence) == 0 {
		platform.Evidence = nil
	}
	refuse(platform, workload, err)
	if opts.Policy != nil {
		platform.PolicyID = PolicyID(opts.Policy)
		if workload != nil {
			workload.PolicyID = platform.PolicyID
		}
	}
	r.Submods[SubmodPlatform] = platform
	if workload != nil {
		r.Submods[workloadName(ae.Type)] = workload
	}
	return r
}

// RefusedProof returns the result of a proof refused with err: Refused's
// appraisals, and the model's, contraindicated.
func RefusedProof(err error, opts Options) *Result {
	r := Refused(err, opts)
	msg := "no verdict"
	if err != nil {
		msg = err.Error()
	}
	r.Submods[SubmodModel] = &Appraisal{Status: StatusContraindicated, Warnings: []string{"refused: " + msg}}
	return r
}

// FromProof returns the result of a verified proof: the appraisals of its
// evidence (FromVerified; a simulation proof's platform is none) and the
// model's, which carries what the signed reply binds. The model's status
// is that of the TEE that signed: none if any of its appraisals is none,
// else the least trustworthy of them.
func FromProof(pr *proof.Result, opts Options) (*Result, error) {
	if pr == nil {
		return nil, errors.New("ear: no verified proof")
	}
	var r *Result
	var err error
	if pr.Simulation {
		r, err = FromClaims(&attest.Claims{Type: attest.TypeSimulation, Simulation: true}, opts)
		if err == nil && len(pr.Certificate) > 0 {
			sum := sha256.Sum256(pr.Certificate)
			r.Submods[SubmodPlatform].Evidence["attested-certificate-sha256"] = hex.EncodeToString(sum[:])
		}
	} else {
		r, err = FromVerified(pr.Evidence, opts)
	}
	if err != nil {
		return nil, err
	}
	status := r.Status()
	ev := map[string]any{
		"kind":                pr.Kind.String(),
		"model-id":            pr.ModelID,
		"signature":           "Ed25519, verified with the attested signing key",
		"signing-key-ed25519": hex.EncodeToString(pr.SigningKey),
	}
	if pr.Kind == proof.KindSendModel {
		ev["model-hash"] = hex.EncodeToString(pr.ModelHash)
	} else {
		ev["input-hash"] = hex.EncodeToString(pr.InputHash)
		if rp := pr.Payload.GetRunModelPayload(); rp != nil {
			outs := []string{}
			for _, o := range rp.GetOutputTensors() {
				sum := sha256.Sum256(o.GetBytesData())
				outs = append(outs, o.GetInfo().GetIndexName()+" sha256:"+hex.EncodeToString(sum[:]))
			}
			ev["output-tensors"] = outs
		}
	}
	if !pr.IssuedAt.IsZero() {
		ev["issued-at-host-clock"] = pr.IssuedAt.UTC().Format(time.RFC3339Nano)
	}
	if pr.SuppliedCollateral {
		ev["collateral"] = "supplied by the verifier"
	} else if !pr.Simulation {
		ev["collateral"] = "the proof's own"
	}
	// The receipt Blindfold servers sign into replies, and which of its
	// bindings the verification checked (against the verifier's expected
	// values or the proof's own evidence) and which it could not.
	if rc := pr.Receipt; rc != nil {
		if h := rc.GetModelHash(); len(h) > 0 {
			ev["receipt-model-hash"] = hex.EncodeToString(h)
		}
		if h := rc.GetOutputHash(); len(h) > 0 {
			ev["receipt-output-hash"] = hex.EncodeToString(h)
		}
		if n := rc.GetNonce(); len(n) > 0 {
			ev["receipt-nonce"] = hex.EncodeToString(n)
		}
		if id := rc.GetReplicaId(); len(id) > 0 {
			ev["receipt-replica"] = rc.GetReplicaSource() + ":" + hex.EncodeToString(id)
		}
	}
	if len(pr.Bindings) > 0 {
		checked, unchecked := []string{}, []string{}
		for _, b := range pr.Bindings {
			if b.Checked {
				checked = append(checked, b.Name)
			} else {
				unchecked = append(unchecked, b.Name)
			}
		}
		ev["bindings-checked"] = checked
		ev["bindings-not-checked"] = unchecked
	}
	model := &Appraisal{Status: status, Evidence: ev}
	if status == StatusNone {
		model.Warnings = []string{"the reply was signed by a key that no verified TEE holds; it proves nothing"}
	}
	if opts.Policy != nil && !pr.Simulation {
		model.PolicyID = PolicyID(opts.Policy)
	}
	r.Submods[SubmodModel] = model
	return r, nil
}
