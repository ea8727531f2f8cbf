package sgx

import (
	"testing"
)

// FuzzPCSBodies feeds arbitrary JSON to the TCB info and QE identity body
// parsers (reached only after a valid signature, but they must never panic).
func FuzzPCSBodies(f *testing.F) {
	f.Add([]byte(`{"id":"SGX","version":3,"issueDate":"2025-06-19T10:56:11Z","nextUpdate":"2025-07-19T10:56:11Z","fmspc":"00A067110000","pceId":"0000","tcbType":0,"tcbEvaluationDataNumber":17,"tcbLevels":[{"tcb":{"sgxtcbcomponents":[{"svn":11},{"svn":11},{"svn":2},{"svn":2},{"svn":255},{"svn":1},{"svn":12},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0}],"pcesvn":13},"tcbDate":"2024-03-13T00:00:00Z","tcbStatus":"SWHardeningNeeded","advisoryIDs":["INTEL-SA-00615"]}]}`))
	f.Add([]byte(`{"id":"QE","version":2,"issueDate":"2025-06-19T10:01:18Z","nextUpdate":"2025-07-19T10:01:18Z","tcbEvaluationDataNumber":17,"miscselect":"00000000","miscselectMask":"FFFFFFFF","attributes":"11000000000000000000000000000000","attributesMask":"FBFFFFFFFFFFFFFF0000000000000000","mrsigner":"8C4F5775D796503E96137F77C68A829A0056AC8DED70140B081B094490C57BFF","isvprodid":1,"tcbLevels":[{"tcb":{"isvsvn":8},"tcbDate":"2024-03-13T00:00:00Z","tcbStatus":"UpToDate"}]}`))
	f.Add([]byte(`{"version":2,"issueDate":"2025-06-19T10:56:11Z","nextUpdate":"2025-07-19T10:56:11Z","fmspc":"00A067110000","pceId":"0000","tcbEvaluationDataNumber":1,"tcbLevels":[{"tcb":{"sgxtcbcomp01svn":1,"pcesvn":3},"tcbStatus":"UpToDate"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if ti, err := parseTCBInfoBody(b); err == nil && len(ti.Levels) == 0 {
			t.Fatal("TCB info without levels accepted")
		}
		if id, err := parseQEIdentityBody(b); err == nil && len(id.Levels) == 0 {
			t.Fatal("QE identity without levels accepted")
		}
		_, _, _ = splitSignedJSON(ItemTCBInfo, string(b), "tcbInfo")
		_, _ = ParseCRL(ItemPCKCRL, string(b))
		_, _ = ParseCertChain(ItemCertificationData, b)
	})
}

func TestTCBInfoV2(t *testing.T) {
	body := `{"version":2,"issueDate":"2025-06-19T10:56:11Z","nextUpdate":"2025-07-19T10:56:11Z","fmspc":"00A067110000","pceId":"0000","tcbType":0,"tcbEvaluationDataNumber":5,"tcbLevels":[{"tcb":{` +
		`"sgxtcbcomp01svn":1,"sgxtcbcomp02svn":2,"sgxtcbcomp03svn":3,"sgxtcbcomp04svn":4,"sgxtcbcomp05svn":5,"sgxtcbcomp06svn":6,"sgxtcbcomp07svn":7,"sgxtcbcomp08svn":8,` +
		`"sgxtcbcomp09svn":9,"sgxtcbcomp10svn":10,"sgxtcbcomp11svn":11,"sgxtcbcomp12svn":12,"sgxtcbcomp13svn":13,"sgxtcbcomp14svn":14,"sgxtcbcomp15svn":15,"sgxtcbcomp16svn":16,"pcesvn":17},` +
		`"tcbDate":"2020-01-01T00:00:00Z","tcbStatus":"OutOfDate","advisoryIDs":["INTEL-SA-1"]}]}`
	ti, err := parseTCBInfoBody([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	l := ti.Levels[0]
	if l.Components[0] != 1 || l.Components[15] != 16 || l.PCESVN != 17 || l.Status != OutOfDate || ti.Version != 2 {
		t.Fatalf("%+v", ti)
	}
	for _, bad := range []string{
		`{"id":"TDX","version":3}`,
		`{"id":"SGX","version":3,"issueDate":"2025-06-19T10:56:11Z","nextUpdate":"2025-07-19T10:56:11Z","fmspc":"00A067110000","pceId":"0000","tcbType":0,"tcbEvaluationDataNumber":1,"tcbLevels":[{"tcb":{"sgxtcbcomponents":[{"svn":1}],"pcesvn":1},"tcbStatus":"UpToDate"}]}`,
		`{"id":"SGX","version":3,"issueDate":"2025-06-19T10:56:11Z","nextUpdate":"2025-07-19T10:56:11Z","fmspc":"00A067110000","pceId":"0000","tcbType":1,"tcbEvaluationDataNumber":1,"tcbLevels":[]}`,
		`{"id":"SGX","version":3,"issueDate":"yesterday","nextUpdate":"2025-07-19T10:56:11Z","fmspc":"00A067110000","pceId":"0000","tcbType":0,"tcbEvaluationDataNumber":1,"tcbLevels":[]}`,
		`{"id":"SGX","version":3,"issueDate":"2025-06-19T10:56:11Z","nextUpdate":"2025-07-19T10:56:11Z","fmspc":"00A0671100","pceId":"0000","tcbType":0,"tcbEvaluationDataNumber":1,"tcbLevels":[]}`,
	} {
		if _, err := parseTCBInfoBody([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func TestSplitSignedJSON(t *testing.T) {
	sig := `"00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"`
	body, _, err := splitSignedJSON(ItemTCBInfo, `{"tcbInfo": {"a" : 1 },"signature":`+sig+`}`, "tcbInfo")
	if err != nil || string(body) != `{"a" : 1 }` {
		t.Fatalf("body %q err %v", body, err)
	}
	for _, bad := range []string{
		`{"tcbInfo":{},"signature":` + sig + `,"extra":1}`,
		`{"tcbInfo":{}}`,
		`{"signature":` + sig + `}`,
		`{"tcbInfo":{},"signature":"00"}`,
		`{"tcbInfo":{},"signature":` + sig + `} trailing`,
		``,
	} {
		if _, _, err := splitSignedJSON(ItemTCBInfo, bad, "tcbInfo"); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
