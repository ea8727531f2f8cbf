package client

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/attest"
	"github.com/blindfold-ai/blindfold/attest/attesttest"
	"github.com/blindfold-ai/blindfold/policy"
	"github.com/blindfold-ai/blindfold/tensor"
)

func TestCheckVersion(t *testing.T) {
	tests := []struct {
		v  string
		ok bool
	}{
		{"0.5.0", true}, {"0.5.9", true}, {"0.5.10", true},
		{"0.6.0", false}, {"1.5.0", false}, {"0.4.9", false},
		{"0.5", false}, {"0.5.0.1", false}, {"", false}, {"0.5.x", false},
		{"0.05.0", false}, {"v0.5.0", false}, {"0.5.-1", false},
	}
	for _, tc := range tests {
		err := CheckVersion(tc.v)
		if (err == nil) != tc.ok {
			t.Errorf("CheckVersion(%q) = %v, want ok=%v", tc.v, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrIncompatibleVersion) {
			t.Errorf("CheckVersion(%q) error %v is not ErrIncompatibleVersion", tc.v, err)
		}
	}
}

func TestSplitAddr(t *testing.T) {
	tests := []struct {
		in   string
		host string
		port int
		ok   bool
	}{
		{"example.com", "example.com", 50052, true},
		{"example.com:1234", "example.com", 1234, true},
		{"127.0.0.1", "127.0.0.1", 50052, true},
		{"[::1]:9", "::1", 9, true},
		{"[::1]", "::1", 50052, true},
		{"::1", "::1", 50052, true},
		{"", "", 0, false},
		{"host:0", "", 0, false},
		{"host:70000", "", 0, false},
		{"host:abc", "", 0, false},
		{":50052", "", 0, false},
		{"http://host", "", 0, false},
		{"a:b:c:d:", "", 0, false},
	}
	for _, tc := range tests {
		h, p, err := SplitAddr(tc.in)
		if (err == nil) != tc.ok || h != tc.host || p != tc.port {
			t.Errorf("SplitAddr(%q) = %q, %d, %v; want %q, %d, ok=%v", tc.in, h, p, err, tc.host, tc.port, tc.ok)
		}
	}
}

func TestConnectRefusesBeforeDialing(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		addr string
		opts []Option
		is   error
		sub  string
	}{
		{"no trust option", "127.0.0.1:1", nil, ErrNoTrust, "WithInsecureTrustOnFirstUse"},
		{"missing host cert", "127.0.0.1:1", []Option{WithHostCertificateFile(filepath.Join(dir, "missing.pem"))}, os.ErrNotExist, "host certificate"},
		{"garbage host cert", "127.0.0.1:1", []Option{WithHostCertificateFile(garbage)}, nil, "host certificate"},
		{"bad address", "a:b:c:d:", []Option{WithInsecureTrustOnFirstUse()}, nil, "is not host or host:port"},
		{"bad attested port", "127.0.0.1", []Option{WithInsecureTrustOnFirstUse(), WithAttestedPort(0)}, nil, "attested port"},
		{"bad receive size", "127.0.0.1", []Option{WithInsecureTrustOnFirstUse(), WithMaxReceiveBytes(0)}, nil, "receive size"},
		{"policy and simulation", "127.0.0.1:1", []Option{WithInsecureTrustOnFirstUse(), WithPolicy(attesttest.Policy(attesttest.MREnclave())), WithSimulation()}, ErrUsage, "WithPolicy and WithSimulation"},
		{"invalid policy", "127.0.0.1:1", []Option{WithInsecureTrustOnFirstUse(), WithPolicy(&policy.Policy{})}, ErrUsage, "neither mr_enclave nor mr_signer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := Connect(ctx, tc.addr, tc.opts...)
			if err == nil {
				c.Close()
				t.Fatal("Connect succeeded")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.sub) {
				t.Errorf("error %q does not mention %q", err, tc.sub)
			}
		})
	}
}

func TestConnectUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Port 1 on loopback: nothing listens there.
	_, err := Connect(ctx, "127.0.0.1:1", WithInsecureTrustOnFirstUse(), WithSimulation())
	var ce *ConnectError
	if !errors.As(err, &ce) || ce.Step != "GetServerInfo on the untrusted port" || ce.Addr != "127.0.0.1:1" {
		t.Fatalf("error %v is not a ConnectError at GetServerInfo", err)
	}
}

func TestDecodeTensors(t *testing.T) {
	f32 := &securedexchange.TensorData{
		Info:      &securedexchange.TensorInfo{Dims: []int32{2}, DatumType: securedexchange.DatumTypeEnum_F32, IndexName: "y"},
		BytesData: []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40},
	}
	scalar := &securedexchange.TensorData{Info: &securedexchange.TensorInfo{DatumType: securedexchange.DatumTypeEnum_I64}, BytesData: make([]byte, 8)}
	empty := &securedexchange.TensorData{Info: &securedexchange.TensorInfo{Dims: []int32{0, 3}, DatumType: securedexchange.DatumTypeEnum_BF16}}
	tests := []struct {
		name string
		in   []*securedexchange.TensorData
		sub  string
	}{
		{"ok", []*securedexchange.TensorData{f32, scalar, empty}, ""},
		{"short data", []*securedexchange.TensorData{{Info: f32.Info, BytesData: f32.BytesData[:7]}}, "needs 8 bytes"},
		{"unknown type", []*securedexchange.TensorData{{Info: &securedexchange.TensorInfo{DatumType: securedexchange.DatumTypeEnum_UNKNOWN}}}, "unknown element type"},
		{"negative dim", []*securedexchange.TensorData{{Info: &securedexchange.TensorInfo{Dims: []int32{-1}}}}, "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := DecodeTensors(tc.in)
			if tc.sub != "" {
				if err == nil || !strings.Contains(err.Error(), tc.sub) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.sub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			v, err := tensor.Values[float32](out[0])
			if err != nil || out[0].Name != "y" || len(v) != 2 || v[0] != 1 || v[1] != 2 {
				t.Fatalf("first output %+v, %v", out[0], err)
			}
			if out[1].DType != tensor.I64 || len(out[1].Shape) != 0 || out[2].DType != tensor.BF16 || out[2].Data == nil {
				t.Fatalf("outputs %+v", out[1:])
			}
		})
	}
}

func TestSpecsToInfo(t *testing.T) {
	tests := []struct {
		name  string
		specs []TensorSpec
		sub   string
	}{
		{"ok with dynamic dim", []TensorSpec{{Name: "x", DType: tensor.F32, Shape: []int64{-1, 4}}}, ""},
		{"invalid dtype", []TensorSpec{{Name: "x", DType: 99}}, "invalid element type"},
		{"too big", []TensorSpec{{Name: "x", DType: tensor.F32, Shape: []int64{1 << 40}}}, "int32"},
		{"negative", []TensorSpec{{Name: "x", DType: tensor.F32, Shape: []int64{-2}}}, "non-negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			infos, err := specsToInfo(tc.specs)
			if tc.sub != "" {
				if err == nil || !strings.Contains(err.Error(), tc.sub) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.sub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			back := infoToSpecs(infos)
			if len(back) != 1 || back[0].Name != "x" || back[0].DType != tensor.F32 || back[0].Shape[0] != -1 || back[0].Shape[1] != 4 {
				t.Fatalf("round trip gave %v", back)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	var uc uploadConfig
	var rc runConfig
	for _, o := range []UploadOption{Sign(), WithChunkSize(7), WithModelID("id"), WithModelName("n"), SaveModel(), WithProgress(func(int64, int64) {})} {
		o.applyUpload(&uc)
	}
	for _, o := range []RunOption{Sign(), WithChunkSize(9), ByName(), WithChunkSize(0)} {
		o.applyRun(&rc)
	}
	if !uc.sign || uc.chunk != 7 || uc.id != "id" || uc.name != "n" || !uc.save || uc.progress == nil {
		t.Errorf("upload config %+v", uc)
	}
	if !rc.sign || rc.chunk != 9 || !rc.byName {
		t.Errorf("run config %+v", rc)
	}
}

// TestReplicaEvidenceBounded: the client keeps at most maxReplicaEvidence
// replicas' evidence, and the newest one is always kept.
func TestReplicaEvidenceBounded(t *testing.T) {
	r := newReplicaEvidence(nil, nil)
	for i := range 3 * maxReplicaEvidence {
		key := replicaKey("sgx-pck-sha256", []byte{byte(i)})
		r.put(key, &attest.Evidence{Type: "x", Raw: []byte{byte(i)}})
		if r.get(key) == nil {
			t.Fatalf("replica %d was not kept", i)
		}
		if len(r.m) > maxReplicaEvidence {
			t.Fatalf("%d replicas kept, more than %d", len(r.m), maxReplicaEvidence)
		}
	}
}
