package bench

import (
	"math"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	s := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct{ p, want float64 }{
		{0, 1}, {100, 10}, {50, 5.5}, {90, 9.1}, {99, 9.91}, {-5, 1}, {150, 10},
	} {
		if got := Percentile(s, c.p); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("Percentile(1..10, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := Percentile([]float64{42}, 99); got != 42 {
		t.Errorf("Percentile of one value = %v, want 42", got)
	}
	if got := Percentile(nil, 50); !math.IsNaN(got) {
		t.Errorf("Percentile of nothing = %v, want NaN", got)
	}
}

func TestSummarize(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		d = append(d, time.Duration(i)*time.Microsecond)
	}
	s := Summarize(d)
	if s.N != 100 || s.MinUS != 1 || s.MaxUS != 100 || s.P50US != 50.5 || s.MeanUS != 50.5 {
		t.Errorf("Summarize(1..100µs) = %+v", s)
	}
	if math.Abs(s.P99US-99.01) > 1e-9 || math.Abs(s.P90US-90.1) > 1e-9 {
		t.Errorf("p90, p99 = %v, %v; want 90.1, 99.01", s.P90US, s.P99US)
	}
	if z := Summarize(nil); z.N != 0 || z.P50US != 0 {
		t.Errorf("Summarize(nil) = %+v, want zero", z)
	}
	if ratio(1, 0) != 0 || ratio(3, 2) != 1.5 {
		t.Error("ratio is wrong")
	}
}
