//go:build cgo

package client_test

import (
	"bytes"
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/internal/testserver"
)

// Empty tensors (a zero dimension) go both ways through the Go client and
// the server over real TLS, and give what the engine gives in process
// (ONNX's backend node tests of empty tensors).
func TestEmptyTensorsEndToEnd(t *testing.T) {
	cases, err := onnxgen.EmptyCases()
	if err != nil {
		t.Fatal(err)
	}
	ts := testserver.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.Connect(ctx, ts.UntrustedAddr, client.WithSimulation(), client.WithHostCertificateFile(ts.HostCertPEM), client.WithAttestedPort(attestedPort(t, ts)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			if _, err := c.UploadModel(ctx, tc.Model, client.WithModelID(tc.Name)); err != nil {
				t.Fatalf("upload: %v", err)
			}
			defer c.DeleteModel(ctx, tc.Name)
			sess, err := ts.Runtime.Load(tc.Model)
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			want, err := sess.Run(ctx, tc.Inputs)
			if err != nil {
				t.Fatalf("engine: %v", err)
			}
			res, err := c.Run(ctx, tc.Name, tc.Inputs, client.Sign())
			if err != nil {
				t.Fatalf("run through the server: %v", err)
			}
			if len(res.Outputs) != len(want) {
				t.Fatalf("%d outputs, want %d", len(res.Outputs), len(want))
			}
			for i, o := range res.Outputs {
				if o.DType != want[i].DType || !reflect.DeepEqual(o.Shape, want[i].Shape) || !bytes.Equal(o.Data, want[i].Data) || !reflect.DeepEqual(o.Shape, tc.Outputs[i]) {
					t.Errorf("output %d: %s%v, want %s%v (%v)", i, o.DType, o.Shape, want[i].DType, want[i].Shape, tc.Outputs[i])
				}
			}
		})
	}
}
