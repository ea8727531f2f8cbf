package bench

import (
	"fmt"
	"strings"
)

// Targets of issue 4 that are not per model.
const (
	// MinThroughputRatio is the least full-path throughput, relative to
	// the engine alone at the same concurrency.
	MinThroughputRatio = 0.9
	// MinUploadMBps is the least upload speed on loopback.
	MinUploadMBps = 150
	// MaxPeakRatio is the most server peak RSS during upload and load of
	// the DistilBERT-shaped encoder, relative to its file size.
	MaxPeakRatio = 2.5
)

// EvaluateTargets checks every target against res; models gives the
// per-model targets (matched by name).
func EvaluateTargets(res *Results, models []Model) []TargetResult {
	byName := map[string]Model{}
	for _, m := range models {
		byName[m.Name] = m
	}
	var out []TargetResult
	atMost := func(name, target, measured string, v, limit float64, unit string) {
		t := TargetResult{Name: name, Target: target, Measured: measured, Value: v, Limit: limit, Met: v <= limit}
		if t.Met {
			t.Margin = fmt.Sprintf("met, %s under", fmtMargin(limit-v, limit, unit))
		} else {
			t.Margin = fmt.Sprintf("missed by %s", fmtMargin(v-limit, limit, unit))
		}
		out = append(out, t)
	}
	atLeast := func(name, target, measured string, v, limit float64, unit string) {
		t := TargetResult{Name: name, Target: target, Measured: measured, Value: v, Limit: limit, Met: v >= limit}
		if t.Met {
			t.Margin = fmt.Sprintf("met, %s over", fmtMargin(v-limit, limit, unit))
		} else {
			t.Margin = fmt.Sprintf("missed by %s", fmtMargin(limit-v, limit, unit))
		}
		out = append(out, t)
	}
	for _, mr := range res.Models {
		m := byName[mr.Name]
		if m.MaxRatio > 0 {
			atMost(mr.Name+" latency", fmt.Sprintf("full-path p50 ≤ %.2f× engine alone", m.MaxRatio),
				fmt.Sprintf("%.3f× (%+.0f µs)", mr.RatioP50, mr.AddedP50US), mr.RatioP50, m.MaxRatio, "x")
		}
		if m.MaxAddedUS > 0 {
			atMost(mr.Name+" added cost", fmt.Sprintf("added p50 ≤ %.0f µs per request", m.MaxAddedUS),
				fmt.Sprintf("%.0f µs", mr.AddedP50US), mr.AddedP50US, m.MaxAddedUS, "µs")
		}
		if m.MaxMsPerMB > 0 {
			atMost(mr.Name+" added per MB", fmt.Sprintf("added p50 ≤ %.1f ms per MB moved", m.MaxMsPerMB),
				fmt.Sprintf("%.2f ms/MB (%+.0f µs for %s, %.3f×)", mr.AddedMsPerMB, mr.AddedP50US, fmtBytes(mr.MovedBytes), mr.RatioP50), mr.AddedMsPerMB, m.MaxMsPerMB, "ms/MB")
		}
		if m.MaxAddedSignedUS > 0 {
			atMost(mr.Name+" added cost, signed", fmt.Sprintf("added p50 ≤ %.0f µs per signed request", m.MaxAddedSignedUS),
				fmt.Sprintf("%.0f µs", mr.SignedAddedUS), mr.SignedAddedUS, m.MaxAddedSignedUS, "µs")
		}
	}
	for _, mr := range res.Models {
		if len(mr.Throughput) == 0 {
			continue
		}
		worst := mr.Throughput[0]
		var all []string
		for _, p := range mr.Throughput {
			if p.Ratio < worst.Ratio {
				worst = p
			}
			all = append(all, fmt.Sprintf("%d: %.2f", p.Concurrency, p.Ratio))
		}
		atLeast(mr.Name+" throughput", fmt.Sprintf("full path ≥ %.1f× engine alone at every concurrency", MinThroughputRatio),
			fmt.Sprintf("worst %.3f× at %d (%s)", worst.Ratio, worst.Concurrency, strings.Join(all, ", ")), worst.Ratio, MinThroughputRatio, "x")
	}
	// Upload speed is judged on every model of at least 10 MB (smaller
	// ones take too little time to measure a rate), memory on the
	// DistilBERT-shaped encoder.
	for i := range res.Models {
		big := &res.Models[i]
		u := big.Upload
		if big.Bytes < 10e6 {
			continue
		}
		atLeast(big.Name+" upload", fmt.Sprintf("upload ≥ %d MB/s on loopback", MinUploadMBps),
			fmt.Sprintf("%.0f MB/s (%.0f MB in %.2f s; ready after %.2f s)", u.MBps, float64(big.Bytes)/1e6, u.TransferS, u.ReadyS), u.MBps, MinUploadMBps, "MB/s")
	}
	for i := range res.Models {
		big := &res.Models[i]
		u := big.Upload
		if big.Name != "encoder" {
			continue
		}
		atMost(big.Name+" server memory", fmt.Sprintf("server peak RSS during upload+load ≤ %.1f× model size", MaxPeakRatio),
			fmt.Sprintf("%.2f× (peak %s; %.2f× above the idle server's %s)", u.PeakTotalRatio, fmtBytes(u.PeakBytes), u.PeakAddedRatio, fmtBytes(u.RSSBeforeBytes)),
			u.PeakTotalRatio, MaxPeakRatio, "x")
	}
	return out
}

// fmtMargin writes d in unit, with its share of limit.
func fmtMargin(d, limit float64, unit string) string {
	pct := 0.0
	if limit != 0 {
		pct = 100 * d / limit
	}
	switch unit {
	case "x":
		return fmt.Sprintf("%.3f× (%.1f%%)", d, pct)
	case "ms/MB":
		return fmt.Sprintf("%.2f ms/MB (%.0f%%)", d, pct)
	default:
		return fmt.Sprintf("%.0f %s (%.0f%%)", d, unit, pct)
	}
}

// fmtBytes writes n in MB (10^6 bytes).
func fmtBytes(n int64) string { return fmt.Sprintf("%.0f MB", float64(n)/1e6) }

// TargetsText lists the targets, one a line, for the terminal.
func TargetsText(res *Results) string {
	var b strings.Builder
	for _, t := range res.Targets {
		state := "MET   "
		if !t.Met {
			state = "MISSED"
		}
		fmt.Fprintf(&b, "%s %-28s %-52s %s; %s\n", state, t.Name, t.Target, t.Measured, t.Margin)
	}
	return b.String()
}
