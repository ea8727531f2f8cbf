package tdx

import "time"

// TD attribute bits (TD_ATTRIBUTES, TDX module ABI).
const (
	// AttrDebug is TUD.DEBUG: the TD is debuggable by the host; it
	// protects nothing.
	AttrDebug uint64 = 1 << 0
)

// Result is what a verified TDX quote says: the TD report body, and what
// the collateral said of its TCB.
type Result struct {
	// Version is the quote version (4 or 5).
	Version uint16
	// BodyType is the TD report body's type: BodyTD10 (TDX 1.0, every
	// version 4 quote) or BodyTD15 (TDX 1.5).
	BodyType uint16
	// TEETCBSVN is the TDX module's TEE_TCB_SVN.
	TEETCBSVN [16]byte
	// MRSEAM is the measurement of the TDX module.
	MRSEAM [48]byte
	// MRSignerSEAM is the signer of the TDX module (zero for Intel's).
	MRSignerSEAM [48]byte
	// SEAMAttributes are the TDX module's attributes.
	SEAMAttributes uint64
	// TDAttributes are the TD's attributes (AttrDebug, ...).
	TDAttributes uint64
	// XFAM is the TD's extended feature mask.
	XFAM uint64
	// MRTD is the measurement of the TD's initial contents (firmware).
	MRTD [48]byte
	// MRConfigID, MROwner and MROwnerConfig are set by the host at launch.
	MRConfigID, MROwner, MROwnerConfig [48]byte
	// RTMR are the runtime measurement registers 0..3.
	RTMR [4][48]byte
	// ReportData is the report data the TD chose.
	ReportData [64]byte
	// TEETCBSVN2 is the TEE_TCB_SVN_2 of a TD report 1.5 body (BodyTD15);
	// zero otherwise.
	TEETCBSVN2 [16]byte
	// MRServiceTD is the MRSERVICETD of a TD report 1.5 body (BodyTD15):
	// the measurement of the service TDs bound to the TD; zero otherwise.
	MRServiceTD [48]byte
	// FMSPC is the platform's FMSPC (hex, from the PCK certificate).
	FMSPC string
	// VerifiedAt is the verification time.
	VerifiedAt time.Time
}
