package webverify

import (
	"encoding/json"
	"fmt"
	"time"
)

// signedDates returns the issueDate and nextUpdate of a PCS response
// {"<key>": {...}, "signature": "..."}, without checking its signature.
func signedDates(key, text string) (issued, next time.Time, err error) {
	var resp map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &resp); err != nil {
		return issued, next, fmt.Errorf("the collateral's %s does not decode: %w", key, err)
	}
	var body struct {
		IssueDate  time.Time `json:"issueDate"`
		NextUpdate time.Time `json:"nextUpdate"`
	}
	if err := json.Unmarshal(resp[key], &body); err != nil {
		return issued, next, fmt.Errorf("the collateral's %s has no dates: %w", key, err)
	}
	if body.IssueDate.IsZero() || body.NextUpdate.IsZero() {
		return issued, next, fmt.Errorf("the collateral's %s has no issueDate or nextUpdate", key)
	}
	return body.IssueDate, body.NextUpdate, nil
}
