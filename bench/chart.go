package bench

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// WriteChart draws, as SVG at path, Blindfold's full-path over engine-alone
// p50 ratio for each model (unsigned and signed) next to BlindAI's
// published enclave slowdowns, with a line at 1 (no overhead).
func WriteChart(res *Results, path string) error {
	var labels []string
	n := len(res.Models) + len(res.BlindAI)
	unsigned := make(plotter.Values, n)
	signed := make(plotter.Values, n)
	blindai := make(plotter.Values, n)
	for i, r := range res.Models {
		labels = append(labels, r.Name)
		unsigned[i], signed[i] = r.RatioP50, r.SignedRatioP50
	}
	for j, b := range res.BlindAI {
		labels = append(labels, "BlindAI\n"+b.Model)
		blindai[len(res.Models)+j] = b.Ratio
	}
	p := plot.New()
	p.Title.Text = "Time per request relative to ONNX Runtime alone (p50, lower is better)"
	p.Y.Label.Text = "ratio"
	p.Y.Min = 0
	w := vg.Points(9)
	series := []struct {
		name   string
		values plotter.Values
		color  color.RGBA
		offset vg.Length
	}{
		{"Blindfold full path", unsigned, color.RGBA{R: 31, G: 119, B: 180, A: 255}, -w / 2},
		{"Blindfold full path, signed", signed, color.RGBA{R: 44, G: 160, B: 44, A: 255}, w / 2},
		{"BlindAI SGX enclave (published)", blindai, color.RGBA{R: 214, G: 39, B: 40, A: 255}, 0},
	}
	for _, s := range series {
		bars, err := plotter.NewBarChart(s.values, w)
		if err != nil {
			return fmt.Errorf("bar chart %q: %w", s.name, err)
		}
		bars.Color = s.color
		bars.LineStyle.Width = 0
		bars.Offset = s.offset
		p.Add(bars)
		p.Legend.Add(s.name, bars)
	}
	one := plotter.NewFunction(func(float64) float64 { return 1 })
	one.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
	one.Color = color.Gray{Y: 80}
	p.Add(one)
	p.Legend.Top = true
	p.NominalX(labels...)
	p.X.Tick.Label.Rotation = 0
	p.X.Tick.Label.Font.Size = vg.Points(8)
	return p.Save(vg.Length(n)*vg.Points(58)+vg.Points(80), vg.Points(300), path)
}
