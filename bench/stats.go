package bench

import (
	"math"
	"slices"
	"time"
)

// Summary describes a sample of latencies. Times are in microseconds.
type Summary struct {
	N      int     `json:"n"`
	MinUS  float64 `json:"min_us"`
	P50US  float64 `json:"p50_us"`
	P90US  float64 `json:"p90_us"`
	P99US  float64 `json:"p99_us"`
	MaxUS  float64 `json:"max_us"`
	MeanUS float64 `json:"mean_us"`
}

// Percentile returns the p-th percentile (0 <= p <= 100) of sorted, a
// sample in ascending order, interpolating linearly between the two closest
// ranks (the method most statistics packages use by default). It returns
// NaN for an empty sample.
func Percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	if p <= 0 {
		return sorted[0]
	}
	if p >= 100 {
		return sorted[n-1]
	}
	pos := p / 100 * float64(n-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, n-1)
	frac := pos - float64(lo)
	return sorted[lo] + (sorted[hi]-sorted[lo])*frac
}

// Summarize returns the summary of the durations d (in any order).
func Summarize(d []time.Duration) Summary {
	if len(d) == 0 {
		return Summary{}
	}
	us := make([]float64, len(d))
	var sum float64
	for i, v := range d {
		us[i] = float64(v) / float64(time.Microsecond)
		sum += us[i]
	}
	slices.Sort(us)
	return Summary{
		N:      len(us),
		MinUS:  us[0],
		P50US:  Percentile(us, 50),
		P90US:  Percentile(us, 90),
		P99US:  Percentile(us, 99),
		MaxUS:  us[len(us)-1],
		MeanUS: sum / float64(len(us)),
	}
}

// ratio returns a/b, or 0 when b is not positive.
func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}
