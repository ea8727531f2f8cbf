package sgx

import "fmt"

// TCBStatus is a TCB status as Intel's TCB info and QE identity name it, and
// the combined status of a verified quote.
type TCBStatus string

// TCB statuses.
const (
	UpToDate                          TCBStatus = "UpToDate"
	SWHardeningNeeded                 TCBStatus = "SWHardeningNeeded"
	ConfigurationNeeded               TCBStatus = "ConfigurationNeeded"
	ConfigurationAndSWHardeningNeeded TCBStatus = "ConfigurationAndSWHardeningNeeded"
	OutOfDate                         TCBStatus = "OutOfDate"
	OutOfDateConfigurationNeeded      TCBStatus = "OutOfDateConfigurationNeeded"
	Revoked                           TCBStatus = "Revoked"
)

// AllTCBStatuses lists every status a Result can carry.
var AllTCBStatuses = []TCBStatus{UpToDate, SWHardeningNeeded, ConfigurationNeeded, ConfigurationAndSWHardeningNeeded, OutOfDate, OutOfDateConfigurationNeeded, Revoked}

// ParseTCBStatus returns the status named s, or an error for an unknown name.
func ParseTCBStatus(s string) (TCBStatus, error) {
	for _, st := range AllTCBStatuses {
		if string(st) == s {
			return st, nil
		}
	}
	return "", fmt.Errorf("unknown TCB status %q", s)
}

// validQEStatus reports whether s is a status that a QE identity TCB level
// may carry.
func validQEStatus(s TCBStatus) bool {
	return s == UpToDate || s == OutOfDate || s == Revoked
}

// MergeStatus combines the platform TCB status (from the TCB info level of
// the PCK certificate) with the QE TCB status (from the QE identity level of
// the QE report's ISVSVN), as Intel's quote verification library does:
//
//   - QE Revoked gives Revoked, whatever the platform status.
//   - QE OutOfDate gives OutOfDate when the platform is UpToDate or
//     SWHardeningNeeded, and OutOfDateConfigurationNeeded when the platform
//     is ConfigurationNeeded or ConfigurationAndSWHardeningNeeded; a
//     platform status that is already OutOfDate, OutOfDateConfigurationNeeded
//     or Revoked stays as it is.
//   - QE UpToDate leaves the platform status as it is.
func MergeStatus(platform, qe TCBStatus) TCBStatus {
	switch qe {
	case Revoked:
		return Revoked
	case OutOfDate:
		switch platform {
		case UpToDate, SWHardeningNeeded:
			return OutOfDate
		case ConfigurationNeeded, ConfigurationAndSWHardeningNeeded:
			return OutOfDateConfigurationNeeded
		}
	}
	return platform
}
