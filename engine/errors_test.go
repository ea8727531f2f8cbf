package engine

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestErrorsListsEverySentinel parses the engine's sources: every exported
// package-level Err* variable must be in Errors(), which the server's
// status table is checked against, so that a new sentinel cannot reach
// clients without a deliberate status.
func TestErrorsListsEverySentinel(t *testing.T) {
	fset := token.NewFileSet()
	paths, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{} // exported Err* package variables
	listed := map[string]bool{}   // Err* names in the body of Errors
	for _, path := range paths {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.GenDecl:
				if d.Tok != token.VAR {
					continue
				}
				for _, spec := range d.Specs {
					for _, name := range spec.(*ast.ValueSpec).Names {
						if strings.HasPrefix(name.Name, "Err") && name.IsExported() {
							declared[name.Name] = true
						}
					}
				}
			case *ast.FuncDecl:
				if d.Name.Name != "Errors" || d.Recv != nil {
					continue
				}
				ast.Inspect(d.Body, func(n ast.Node) bool {
					if id, ok := n.(*ast.Ident); ok && strings.HasPrefix(id.Name, "Err") {
						listed[id.Name] = true
					}
					return true
				})
			}
		}
	}
	for name := range declared {
		if !listed[name] {
			t.Errorf("engine.%s is not in Errors(): add it there and give it a status in the server's table", name)
		}
	}
	if len(declared) < 10 {
		t.Fatalf("found only %d sentinels (%v); is the parse looking at the right files?", len(declared), declared)
	}
	texts := map[string]bool{}
	for _, e := range Errors() {
		if e == nil {
			t.Fatal("Errors() holds nil")
		}
		texts[e.Error()] = true
	}
	if len(Errors()) != len(declared) {
		t.Errorf("the engine declares %d Err* variables but Errors() lists %d: add the new sentinel to Errors (and to the server's status table)", len(declared), len(Errors()))
	}
	if len(texts) != len(Errors()) {
		t.Error("two sentinels share a message, or Errors() lists one twice")
	}
}

// TestPublicReason: ONNX Runtime's text reaches clients without host
// paths, file sizes, source locations or memory figures.
func TestPublicReason(t *testing.T) {
	cases := []struct{ in, want, not string }{
		{`Error creating C session: External data path validation failed for initializer: W. Error: tensorprotoutils.cc:461 ValidateExternalDataPathFromDir External data path does not exist: "/srv/x/canary.bin"`, "ONNX Runtime refused it (FAIL)", "/srv"},
		{`[ONNXRuntimeError] : 1 : FAIL : Load model from memory failed:GetFileLength for ./state/sealing.key failed: 32`, "ONNX Runtime refused it (FAIL)", "32"},
		{`[ONNXRuntimeError] : 10 : INVALID_GRAPH : This is an invalid model. Error in Node:add : Node (add) has input size 3 not in range [min=2, max=2].`, "Node (add) has input size 3", "ONNXRuntimeError"},
		{`Non-zero status code returned while running Add node. Name:'add' Status Message: /onnxruntime_src/onnxruntime/core/providers/cpu/math/element_wise_ops.h:560 void onnxruntime::BroadcastIterator::Append(ptrdiff_t, ptrdiff_t) axis == 1 || axis == largest was false. Attempting to broadcast an axis by a dimension other than 1. 2 by 3`, "Attempting to broadcast", "/onnxruntime_src"},
		{`Available memory of 1048576 is smaller than requested bytes of 2097152`, "ONNX Runtime refused it", "1048576"},
	}
	for _, c := range cases {
		got := publicReason(c.in)
		if !strings.Contains(got, c.want) || strings.Contains(got, c.not) {
			t.Errorf("publicReason(%q) = %q, want it to contain %q and not %q", c.in, got, c.want, c.not)
		}
	}
	e := ortError(ErrInvalidModel, errors.New(`open /etc/passwd: 1234 bytes`))
	if !errors.Is(e, ErrInvalidModel) || strings.Contains(Reason(e), "passwd") || !strings.Contains(e.Error(), "passwd") {
		t.Errorf("Reason %q / Error %q: the log must keep the detail, the client must not get it", Reason(e), e.Error())
	}
}
