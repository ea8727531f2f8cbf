package sgx

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/attest/internal/testvectors"
)

// realTCBLevels returns the sorted TCB levels of the dcap-qvl vector's real
// TCB info (FMSPC 00A067110000, tcbEvaluationDataNumber 17).
func realTCBLevels(t *testing.T) []tcbLevel {
	t.Helper()
	var in struct {
		TCBInfo string `json:"tcb_info"`
	}
	if err := json.Unmarshal(testvectors.Read(t, "sgx/dcap-qvl/sgx_quote_collateral.json"), &in); err != nil {
		t.Fatal(err)
	}
	ti, err := parseTCBInfoBody([]byte(in.TCBInfo))
	if err != nil {
		t.Fatal(err)
	}
	return sortedTCBLevels(ti.Levels)
}

// TestTCBRecoveriesRealTCBInfo counts the TCB recoveries behind for
// platforms at each TCB of the real TCB info. The expected counts were read
// off the file by hand. Its levels, highest first, are (CPUSVN components
// 1, 2 and 7, PCESVN, tcbDate, tcbStatus):
//
//	11 11 12 PCESVN 13  2024-03-13  SWHardeningNeeded
//	11 11  0 PCESVN 13  2024-03-13  ConfigurationAndSWHardeningNeeded
//	10 10 12 PCESVN 13  2023-02-15  OutOfDate
//	10 10  0 PCESVN 13  2023-02-15  OutOfDateConfigurationNeeded
//	 9  9 12 PCESVN 13  2022-11-09  OutOfDate
//	 9  9  0 PCESVN 13  2022-11-09  OutOfDateConfigurationNeeded
//	 5  5  4 PCESVN 11  2021-11-10  OutOfDate
//	 5  5  4 PCESVN 10  2020-11-11  OutOfDate
//	 5  5  0 PCESVN 11  2021-11-10  OutOfDateConfigurationNeeded
//	 5  5  0 PCESVN 10  2020-11-11  OutOfDateConfigurationNeeded
//	 5  5  0 PCESVN  5  2018-01-04  OutOfDate
//
// (the other components are 2 2 255 1 at positions 3 to 6, 0 after 7, in
// every level). The tcbDates are 2024-03-13, 2023-02-15, 2022-11-09,
// 2021-11-10, 2020-11-11 and 2018-01-04: six recovery events, the latest
// 2024-03-13. The real quote's platform (11 11 2 2 255 1 0 ..., PCESVN 13)
// matches the second level, ConfigurationAndSWHardeningNeeded, of the
// latest date: 0 behind, although its status is not UpToDate (it needs a
// configuration change, not a TCB recovery).
func TestTCBRecoveriesRealTCBInfo(t *testing.T) {
	levels := realTCBLevels(t)
	if len(levels) != 11 {
		t.Fatalf("%d levels, the file has 11", len(levels))
	}
	day := func(s string) time.Time {
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	comps := func(a, b, c7 uint8) [16]uint8 { return [16]uint8{a, b, 2, 2, 255, 1, c7} }
	tests := []struct {
		name       string
		components [16]uint8
		pcesvn     uint16
		behind     int
		status     TCBStatus
		date       string
	}{
		// The real quote's platform: the second level, of the latest date.
		{"real quote's platform", comps(11, 11, 0), 13, 0, ConfigurationAndSWHardeningNeeded, "2024-03-13"},
		{"highest level", comps(11, 11, 12), 13, 0, SWHardeningNeeded, "2024-03-13"},
		// Above 2023-02-15: only 2024-03-13.
		{"one recovery late", comps(10, 10, 12), 13, 1, OutOfDate, "2023-02-15"},
		{"one recovery late, configuration", comps(10, 10, 0), 13, 1, OutOfDateConfigurationNeeded, "2023-02-15"},
		// Above 2022-11-09: 2024-03-13 and 2023-02-15.
		{"two recoveries late", comps(9, 9, 12), 13, 2, OutOfDate, "2022-11-09"},
		// Above 2021-11-10 (PCESVN 11): 2024-03-13, 2023-02-15, 2022-11-09.
		{"three recoveries late", comps(5, 5, 4), 11, 3, OutOfDate, "2021-11-10"},
		// Above 2020-11-11 (PCESVN 10): the three above plus the
		// 2021-11-10 level at PCESVN 11.
		{"four recoveries late", comps(5, 5, 4), 10, 4, OutOfDate, "2020-11-11"},
		// The lowest level, 2018-01-04: the five later dates.
		{"lowest level", comps(5, 5, 0), 5, 5, OutOfDate, "2018-01-04"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ext := &PCKExtensions{CPUSVNComponents: tc.components, PCESVN: tc.pcesvn}
			matched := slices.IndexFunc(levels, func(l tcbLevel) bool { return tcbLevelApplies(l, ext) })
			if matched < 0 {
				t.Fatal("no level matches")
			}
			if l := levels[matched]; l.Status != tc.status || !l.TCBDate.Equal(day(tc.date)) {
				t.Fatalf("matched level %s of %s, want %s of %s", l.Status, l.TCBDate.Format(time.DateOnly), tc.status, tc.date)
			}
			behind, latest := tcbRecoveries(levels, matched)
			if behind != tc.behind {
				t.Errorf("%d recoveries behind, want %d", behind, tc.behind)
			}
			if !latest.Equal(day("2024-03-13")) {
				t.Errorf("latest TCB date %s, want 2024-03-13", latest)
			}
		})
	}
}

func TestTCBRecoveriesWithoutDate(t *testing.T) {
	d := time.Date(2024, 3, 13, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		levels  []tcbLevel
		matched int
		want    int
	}{
		{"matched level without date", []tcbLevel{{TCBDate: d}, {}}, 1, -1},
		{"level above without date", []tcbLevel{{}, {TCBDate: d}}, 1, -1},
		{"same date above", []tcbLevel{{TCBDate: d}, {TCBDate: d}}, 1, 0},
		{"only level", []tcbLevel{{TCBDate: d}}, 0, 0},
	}
	for _, tc := range tests {
		if got, _ := tcbRecoveries(tc.levels, tc.matched); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestRealQuoteRecoveries: the real quote's result says it is 0 recoveries
// behind, at the latest TCB date 2024-03-13 (see
// TestTCBRecoveriesRealTCBInfo).
func TestRealQuoteRecoveries(t *testing.T) {
	c, err := CollateralFromDCAPQVLJSON(testvectors.Read(t, "sgx/dcap-qvl/sgx_quote_collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	res, err := Verify(testvectors.Read(t, "sgx/dcap-qvl/sgx_quote"), c, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if res.TCBRecoveriesBehind != 0 || !res.LatestTCBDate.Equal(time.Date(2024, 3, 13, 0, 0, 0, 0, time.UTC)) || !res.TCBDate.Equal(res.LatestTCBDate) {
		t.Fatalf("%d recoveries behind, latest %s, platform's %s; want 0, 2024-03-13, 2024-03-13", res.TCBRecoveriesBehind, res.LatestTCBDate, res.TCBDate)
	}
}
