package client_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestREADMESnippetIsTheExample keeps README.md's Go snippet identical to
// the package Example (example_test.go), which go test runs against a
// real simulation server: the snippet is the Example's body from "ctx :="
// up to its Output comment.
func TestREADMESnippetIsTheExample(t *testing.T) {
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	body := string(src)
	start := strings.Index(body, "\nfunc Example() {")
	if start < 0 {
		t.Fatal("example_test.go has no func Example")
	}
	body = body[start:]
	from := strings.Index(body, "\tctx := context.Background()")
	to := strings.Index(body, "\t// Output:")
	if from < 0 || to < from {
		t.Fatal("cannot find the Example's body")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```go\n(.*?)```").FindStringSubmatch(string(readme))
	if m == nil {
		t.Fatal("README.md has no Go snippet")
	}
	norm := func(s string) []string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if l = strings.Join(strings.Fields(l), " "); l != "" {
				out = append(out, l)
			}
		}
		return out
	}
	want, got := norm(body[from:to]), norm(m[1])
	if strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Fatalf("README.md's Go snippet differs from the body of Example in client/example_test.go:\nREADME:\n%s\n\nExample:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
