//go:build js && wasm

// Command blindfold-verify-wasm is the proof verifier of the browser page
// in docs/verify/ (make verify-page builds it with GOOS=js GOARCH=wasm).
// It registers two functions on the page's global object:
//
//	blindfoldVerify(proof, policy, options) string
//	blindfoldCollateralWindow(proof) string
//
// proof is a Uint8Array holding the proof file, policy a Uint8Array
// holding policy.toml (or null: none, for a simulation proof), options an
// object with at (RFC 3339 verification time; empty: now),
// allowSimulation (boolean), and the payload fields expected, each
// optional: modelId, modelHash and inputHash (64 hex digits).
// blindfoldVerify returns the JSON of a webverify.Report;
// blindfoldCollateralWindow the JSON object {from, until} of an SGX
// proof's collateral validity, or {error}. When both are set,
// blindfoldReady is true. The page makes no network request and neither
// does this program: everything is verified in the browser.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"syscall/js"
	"time"

	"github.com/blindfold-ai/blindfold/internal/webverify"
)

func main() {
	js.Global().Set("blindfoldVerify", js.FuncOf(verify))
	js.Global().Set("blindfoldCollateralWindow", js.FuncOf(collateralWindow))
	js.Global().Set("blindfoldTestBuild", testBuild)
	js.Global().Set("blindfoldReady", true)
	select {}
}

// bytesArg copies a Uint8Array of at most limit bytes, checking its
// length before copying; undefined and null give none.
func bytesArg(v js.Value, what string, limit int) ([]byte, error) {
	switch {
	case v.IsUndefined() || v.IsNull():
		return nil, nil
	case v.InstanceOf(js.Global().Get("Uint8Array")):
		n := v.Length()
		if n > limit {
			return nil, fmt.Errorf("the %s is %d bytes, more than %d", what, n, limit)
		}
		b := make([]byte, n)
		js.CopyBytesToGo(b, v)
		return b, nil
	}
	return nil, fmt.Errorf("the %s must be a Uint8Array", what)
}

func refused(err error) any {
	b, _ := json.Marshal(&webverify.Report{Verdict: webverify.Refused, Summary: "The proof was not checked: " + err.Error() + ".", Error: err.Error(), Checks: []webverify.Check{}})
	return string(b)
}

func verify(_ js.Value, args []js.Value) (out any) {
	defer func() {
		// A bug must not take the verifier down with the page: refuse.
		if r := recover(); r != nil {
			out = refused(fmt.Errorf("internal error of the verifier: %v", r))
		}
	}()
	if len(args) < 2 {
		return refused(fmt.Errorf("blindfoldVerify takes (proof, policy, options)"))
	}
	proofFile, err := bytesArg(args[0], "proof file", webverify.MaxProofBytes)
	if err != nil {
		return refused(err)
	}
	policyFile, err := bytesArg(args[1], "policy file", webverify.MaxPolicyBytes)
	if err != nil {
		return refused(err)
	}
	var opts webverify.Options
	if len(args) > 2 && args[2].Type() == js.TypeObject {
		o := args[2]
		if at := o.Get("at"); at.Type() == js.TypeString && at.String() != "" {
			t, err := time.Parse(time.RFC3339, at.String())
			if err != nil {
				return refused(fmt.Errorf("the verification time %q is not an RFC 3339 time such as 2025-07-01T00:00:00Z", at.String()))
			}
			opts.Now = t
		}
		opts.AllowSimulation = o.Get("allowSimulation").Truthy()
		if v := o.Get("modelId"); v.Type() == js.TypeString {
			opts.ModelID = v.String()
		}
		if opts.ModelHash, err = hashOption(o, "modelHash", "model hash"); err != nil {
			return refused(err)
		}
		if opts.InputHash, err = hashOption(o, "inputHash", "input hash"); err != nil {
			return refused(err)
		}
	}
	if opts.TestRoot, err = testRoot(); err != nil {
		return refused(err)
	}
	b, err := json.Marshal(webverify.Verify(proofFile, policyFile, opts))
	if err != nil {
		return refused(err)
	}
	return string(b)
}

// hashOption reads an optional SHA-256 given as 64 hex digits.
func hashOption(o js.Value, key, what string) ([]byte, error) {
	v := o.Get(key)
	if v.Type() != js.TypeString || strings.TrimSpace(v.String()) == "" {
		return nil, nil
	}
	s := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(v.String())), "0x")
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("the expected %s must be a SHA-256: 64 hex digits", what)
	}
	return b, nil
}

func collateralWindow(_ js.Value, args []js.Value) any {
	out := map[string]string{}
	var proofFile []byte
	var err error
	if len(args) < 1 {
		err = fmt.Errorf("blindfoldCollateralWindow takes (proof)")
	} else {
		proofFile, err = bytesArg(args[0], "proof file", webverify.MaxProofBytes)
	}
	if err == nil {
		var from, until time.Time
		if from, until, err = webverify.CollateralWindow(proofFile); err == nil {
			out["from"], out["until"] = from.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339)
		}
	}
	if err != nil {
		out["error"] = err.Error()
	}
	b, _ := json.Marshal(out)
	return string(b)
}
