package sgx

import "time"

// tcbRecoveries counts the TCB recovery events that a platform at
// levels[matched] is behind, levels being sorted highest first
// (sortedTCBLevels). Intel publishes each TCB recovery as a new
// tcbEvaluationDataNumber whose TCB info gains levels with a new, later
// tcbDate; an SGX TCB info's levels carry the tcbDate but not the number.
// So the count is the number of distinct tcbDate values, later than the
// matched level's, among the levels above it. It returns that count and the
// latest tcbDate of all levels (the TCB level an UpToDate platform needs);
// the count is -1 when a level it needs has no tcbDate.
func tcbRecoveries(levels []tcbLevel, matched int) (int, time.Time) {
	var latest time.Time
	for _, l := range levels {
		if l.TCBDate.After(latest) {
			latest = l.TCBDate
		}
	}
	own := levels[matched].TCBDate
	if own.IsZero() {
		return -1, latest
	}
	newer := map[time.Time]bool{}
	for _, l := range levels[:matched] {
		if l.TCBDate.IsZero() {
			return -1, latest
		}
		if l.TCBDate.After(own) {
			newer[l.TCBDate.UTC()] = true
		}
	}
	return len(newer), latest
}
