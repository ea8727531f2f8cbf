// Package depcheck holds tests about the module's import graph.
package depcheck

import (
	"encoding/json"
	"os/exec"
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
