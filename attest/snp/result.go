package snp

import "time"

// Guest policy bits (SEV-SNP firmware ABI, GUEST_POLICY).
const (
	// PolicyMigrateMA allows a migration agent to be associated with the
	// guest; the agent can read the guest's memory.
	PolicyMigrateMA uint64 = 1 << 18
	// PolicyDebug allows the hypervisor to debug the guest: it protects
	// nothing.
	PolicyDebug uint64 = 1 << 19
)

// TCB is the security patch levels of an SNP TCB version.
type TCB struct {
	// Bootloader, TEE, SNP and Microcode are the security patch levels.
	Bootloader, TEE, SNP, Microcode uint8
}

// AtLeast reports whether every level of t is at least that of min.
func (t TCB) AtLeast(min TCB) bool {
	return t.Bootloader >= min.Bootloader && t.TEE >= min.TEE && t.SNP >= min.SNP && t.Microcode >= min.Microcode
}

// Result is what a verified SEV-SNP attestation report says.
type Result struct {
	// Version is the report version.
	Version uint32
	// Product is the product line of the chip ("Milan", "Genoa", "Turin").
	Product string
	// Signer is "VCEK" or "VLEK".
	Signer string
	// GuestPolicy is the guest policy the guest was launched with.
	GuestPolicy uint64
	// VMPL is the VM privilege level that asked for the report.
	VMPL uint32
	// Measurement is the launch measurement.
	Measurement [48]byte
	// HostData is the data the host gave at launch.
	HostData [32]byte
	// FamilyID and ImageID come from the ID block given at launch.
	FamilyID, ImageID [16]byte
	// ReportData is the report data the guest chose.
	ReportData [64]byte
	// ReportedTCB is the TCB the report's signing key is derived from.
	ReportedTCB TCB
	// CurrentTCB and CommittedTCB are the platform's TCBs.
	CurrentTCB, CommittedTCB TCB
	// FirmwareMajor, FirmwareMinor and FirmwareBuild are the current
	// firmware version.
	FirmwareMajor, FirmwareMinor, FirmwareBuild uint8
	// ChipID identifies the chip (zero when masked).
	ChipID [64]byte
	// CRLChecked is false when Options.AllowMissingCRL let the ARK's CRL
	// be absent: the ASK or ASVK may be revoked.
	CRLChecked bool
	// VerifiedAt is the verification time.
	VerifiedAt time.Time
}
