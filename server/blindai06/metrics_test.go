package blindai06_test

import (
	"net/http"
	"testing"

	"github.com/blindfold-ai/blindfold/internal/testserver"
	"github.com/blindfold-ai/blindfold/server"
	"github.com/blindfold-ai/blindfold/tensor"
)

// Requests over the 0.6 ports are counted in the server's metrics, by a
// fixed operation name and the gRPC code name of their status, with the
// bytes they carried.
func TestRequestsCounted(t *testing.T) {
	srv := testserver.Start(t, testserver.BlindAI06On)
	c := connect06(t, srv)
	up := c.upload(testserver.Model(t, "mlp.onnx"))
	x, _ := tensor.New("x", []int64{1, 4}, []float32{1, 2, 3, 4})
	if code, _, msg := c.run(up.ModelID, "", []tensor06{to06(x, false)}); code != http.StatusOK {
		t.Fatalf("run: %d %s", code, msg)
	}
	if code, _, _ := c.run("no-such-model", "", []tensor06{to06(x, false)}); code != http.StatusNotFound {
		t.Fatalf("run of a missing model: %d, want 404", code)
	}
	families, err := srv.MetricsRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]float64{}
	var bytesIn float64
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["protocol"] != server.ProtocolBlindAI06 {
				continue
			}
			switch f.GetName() {
			case "blindfold_requests_total":
				count[labels["rpc"]+" "+labels["code"]] += m.GetCounter().GetValue()
			case "blindfold_received_bytes_total":
				bytesIn += m.GetCounter().GetValue()
			}
		}
	}
	for _, want := range []string{"upload OK", "run OK", "run NOT_FOUND", "certificate OK"} {
		if count[want] < 1 {
			t.Errorf("no %q request counted; counted %v", want, count)
		}
	}
	if bytesIn < 1000 {
		t.Errorf("bytes in over the 0.6 ports: %v, want at least the model's", bytesIn)
	}
}
