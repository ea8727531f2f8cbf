// Package depcheck holds tests about the module's import graph.
package depcheck

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// production lists the packages that are built into the server and the
// client; testOnly lists packages they must never link.
var (
	production = []string{
		"github.com/blindfold-ai/blindfold/engine",
		"github.com/blindfold-ai/blindfold/server",
		"github.com/blindfold-ai/blindfold/store",
		"github.com/blindfold-ai/blindfold/cmd/blindfold-server",
		"github.com/blindfold-ai/blindfold/cmd/blindfold",
	}
	testOnly = []string{
		"github.com/blindfold-ai/blindfold/internal/onnxgen",
		"github.com/blindfold-ai/blindfold/internal/testserver",
		"github.com/blindfold-ai/blindfold/attest/attesttest",
		"github.com/blindfold-ai/blindfold/attest/sgx/sgxtest",
		"github.com/blindfold-ai/blindfold/attest/snp/snptest",
		"github.com/blindfold-ai/blindfold/attest/tdx/tdxtest",
		"github.com/google/go-configfs-tsm/configfs/faketsm",
		"testing",
	}
)

// TestProductionDoesNotImportTestCode runs go list -deps on the production
// packages (without their tests) and fails if any test-only package is
// among their dependencies.
func TestProductionDoesNotImportTestCode(t *testing.T) {
	args := append([]string{"list", "-deps", "-json=ImportPath,Imports"}, production...)
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	type pkg struct {
		ImportPath string
		Imports    []string
	}
	importers := map[string][]string{} // package -> packages that import it
	seen := map[string]bool{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		seen[p.ImportPath] = true
		for _, imp := range p.Imports {
			importers[imp] = append(importers[imp], p.ImportPath)
		}
	}
	for _, p := range production {
		if !seen[p] {
			t.Fatalf("go list did not report %s; is the list of production packages stale?", p)
		}
	}
	if !seen["github.com/blindfold-ai/blindfold/internal/onnxpb"] {
		t.Error("the engine no longer depends on internal/onnxpb; the check below may be looking at the wrong packages")
	}
	for _, bad := range testOnly {
		if seen[bad] {
			t.Errorf("production code depends on %s (imported by %s)", bad, strings.Join(importers[bad], ", "))
		}
	}
}

// clientSide lists the packages a client, a proof checker or a policy tool
// links: they must build without cgo, never link the engine (ONNX Runtime),
// and never link a package that registers command-line flags in the global
// flag set (as the CLI and device packages of go-sev-guest and go-tdx-guest
// do), which would leak into every program that embeds the client.
var clientSide = []string{
	"github.com/blindfold-ai/blindfold/client",
	"github.com/blindfold-ai/blindfold/proof",
	"github.com/blindfold-ai/blindfold/policy",
	"github.com/blindfold-ai/blindfold/attest/...",
	"github.com/blindfold-ai/blindfold/internal/webverify",
}

// globalFlag matches a call that defines a flag in the global flag set.
var globalFlag = regexp.MustCompile(`\bflag\.(Bool|BoolVar|String|StringVar|Int|IntVar|Int64|Int64Var|Uint|UintVar|Uint64|Uint64Var|Float64|Float64Var|Duration|DurationVar|Var|Func|BoolFunc|TextVar)\(`)

// TestClientSideIsPureGo runs go list -deps on the client-side packages and
// fails on any dependency outside the standard library with cgo files, on
// the engine or ONNX Runtime's binding, and on any package that defines a
// flag in the global flag set.
func TestClientSideIsPureGo(t *testing.T) {
	args := append([]string{"list", "-deps", "-json=ImportPath,Dir,GoFiles,CgoFiles,Standard,Imports"}, clientSide...)
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	type pkg struct {
		ImportPath string
		Dir        string
		GoFiles    []string
		CgoFiles   []string
		Standard   bool
		Imports    []string
	}
	importers := map[string][]string{}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
		for _, imp := range p.Imports {
			importers[imp] = append(importers[imp], p.ImportPath)
		}
	}
	seen := map[string]bool{}
	for _, p := range pkgs {
		seen[p.ImportPath] = true
	}
	for _, want := range []string{"github.com/blindfold-ai/blindfold/attest/tdx", "github.com/blindfold-ai/blindfold/attest/snp", "github.com/blindfold-ai/blindfold/attest/sgx"} {
		if !seen[want] {
			t.Errorf("go list did not report %s among the client side's packages; is the list stale?", want)
		}
	}
	forbidden := []string{
		"github.com/blindfold-ai/blindfold/engine",
		"github.com/blindfold-ai/blindfold/server",
		"github.com/blindfold-ai/blindfold/store",
		"github.com/yalue/onnxruntime_go",
	}
	for _, p := range pkgs {
		if p.Standard {
			continue
		}
		if len(p.CgoFiles) > 0 {
			t.Errorf("client side depends on %s, which uses cgo (%v; imported by %s)", p.ImportPath, p.CgoFiles, strings.Join(importers[p.ImportPath], ", "))
		}
		for _, f := range forbidden {
			if p.ImportPath == f || strings.HasPrefix(p.ImportPath, f+"/") {
				t.Errorf("client side depends on %s (imported by %s)", p.ImportPath, strings.Join(importers[p.ImportPath], ", "))
			}
		}
		for _, f := range p.GoFiles {
			b, err := os.ReadFile(filepath.Join(p.Dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if loc := globalFlag.FindIndex(b); loc != nil {
				t.Errorf("client side depends on %s, whose %s defines a global command-line flag (%q; imported by %s)", p.ImportPath, f, b[loc[0]:loc[1]], strings.Join(importers[p.ImportPath], ", "))
			}
		}
	}
}
