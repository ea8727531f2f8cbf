//go:build !js

package webverify_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"image"
	"image/color/palette"
	"image/draw"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/proof"
)

// testRootMarker is a string of cmd/blindfold-verify-wasm/testroot.go,
// which only the test build (tag blindfold_testroot) contains.
const testRootMarker = "blindfold_testroot build: verifying against a TEST root CA"

// chromiumPath finds Chromium, or skips (fails under CI).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "Chromium is not installed (Debian package chromium; scripts/test.sh installs it as root): the browser page is not tested"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set: a missing tool is a failure)")
	}
	t.Skip(msg)
	return ""
}

// buildPage copies the page of docs/verify into a new folder with Go's
// wasm_exec.js and the verifier built for js/wasm (with the test root
// build tag when testRoot is set), as make verify-page does.
func buildPage(t *testing.T, root string, testRoot bool) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"index.html", "verify.js", "verify.css"} {
		b, err := os.ReadFile(filepath.Join(root, "docs", "verify", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the verifier: %v", err)
	}
	out, err := exec.Command(goCmd, "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	goroot := strings.TrimSpace(string(out))
	var wasmExec []byte
	for _, p := range []string{filepath.Join(goroot, "lib", "wasm", "wasm_exec.js"), filepath.Join(goroot, "misc", "wasm", "wasm_exec.js")} {
		if wasmExec, err = os.ReadFile(p); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("wasm_exec.js not found in %s: %v", goroot, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "wasm_exec.js"), wasmExec, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -buildid=", "-o", filepath.Join(dir, "blindfold-verify.wasm")}
	if testRoot {
		args = append(args, "-tags", "blindfold_testroot")
	}
	cmd := exec.Command(goCmd, append(args, "./cmd/blindfold-verify-wasm")...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the verifier for js/wasm: %v\n%s", err, out)
	}
	return dir
}

// pageCheck is one check as the page shows it.
type pageCheck struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Detail string `json:"detail"`
}

// pageResult is what the page shows after a verification.
type pageResult struct {
	Verdict   string      `json:"verdict"`
	Summary   string      `json:"summary"`
	Warnings  []string    `json:"warnings"`
	Checks    []pageCheck `json:"checks"`
	Ms        string      `json:"ms"`
	TestBuild bool        `json:"testBuild"`
	At        string      `json:"at"`
}

const readPage = `({
  verdict: document.getElementById("verdict").dataset.verdict,
  summary: document.getElementById("summary").textContent,
  warnings: [...document.querySelectorAll("#warnings li")].map(li => li.textContent),
  checks: [...document.querySelectorAll("#checks li")].map(li => ({
    id: li.dataset.id, status: li.dataset.status,
    detail: (li.querySelector(".detail") || {textContent: ""}).textContent})),
  ms: document.getElementById("timing").dataset.ms || "",
  testBuild: !document.getElementById("test-build").hidden,
  at: document.getElementById("verify-at").value
})`

// TestBrowserPage loads docs/verify in headless Chromium from a local
// HTTP server, picks the files through the page's file inputs
// (DOM.setFileInputFiles), and reads the verdict and every check from the
// page.
func TestBrowserPage(t *testing.T) {
	chromium := chromiumPath(t)
	f := shared(t)
	root := projectRoot(t)
	files := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(files, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	realProof, realTampered, realPolicy := write("real.proof", f.realProof), write("real-tampered.proof", f.realTampered), write("real-policy.toml", f.realPolicy)
	synthProof, synthFlipped, synthPolicy := write("synthetic.proof", f.synthProof), write("synthetic-flipped.proof", f.synthFlipped), write("synthetic-policy.toml", f.synthPolicy)
	simProof := write("simulation.proof", f.simProof)
	tdxProof, tdxPolicy := write("tdx.proof", f.tdxProof), write("tdx-policy.toml", f.tdxPolicy)
	tdxRoot := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.tdxRoot.Raw})

	// Two builds of the page: the one make verify-page ships, and the test
	// build that accepts a test root.
	var prodDir, testDir string
	var wg sync.WaitGroup
	wg.Go(func() { prodDir = buildPage(t, root, false) })
	wg.Go(func() { testDir = buildPage(t, root, true) })
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	prodWasm, err := os.ReadFile(filepath.Join(prodDir, "blindfold-verify.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	testWasm, err := os.ReadFile(filepath.Join(testDir, "blindfold-verify.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(prodWasm, []byte(testRootMarker)) {
		t.Error("the production build contains the test root code")
	}
	if !bytes.Contains(testWasm, []byte(testRootMarker)) {
		t.Error("the test build lacks the test root code: the marker check above proves nothing")
	}
	t.Logf("verifier size: %d bytes (production build)", len(prodWasm))

	prod := httptest.NewServer(http.FileServer(http.Dir(prodDir)))
	defer prod.Close()
	test := httptest.NewServer(http.FileServer(http.Dir(testDir)))
	defer test.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	allocOpts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(960, 1600), chromedp.Flag("disable-gpu", true))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, allocOpts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()

	var mu sync.Mutex
	var requests, exceptions []string
	if err := chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			requests = append(requests, e.Request.URL)
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			msg := fmt.Sprintf("%s (%s:%d)", d.Text, d.URL, d.LineNumber)
			if d.Exception != nil {
				msg += ": " + d.Exception.Description
			}
			exceptions = append(exceptions, msg)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(bctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	if _, err := chromedp.Call(bctx, runtime.Enable, struct{}{}); err != nil {
		t.Fatal(err)
	}

	// load opens the page and waits for the verifier to start.
	load := func(t *testing.T, base string, testRootPEM []byte) {
		t.Helper()
		lctx, cancel := context.WithTimeout(bctx, time.Minute)
		defer cancel()
		start := time.Now()
		if err := chromedp.Do(lctx, chromedp.Navigate(base+"/index.html"), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`))); err != nil {
			t.Fatalf("loading the page: %v", err)
		}
		t.Logf("page and verifier loaded and started in %v", time.Since(start).Round(time.Millisecond))
		if testRootPEM != nil {
			if _, err := chromedp.Run(lctx, chromedp.Evaluate[bool]("window.blindfoldTestRootPEM = "+jsString(string(testRootPEM))+"; true")); err != nil {
				t.Fatal(err)
			}
		}
	}
	// pick sets a file input and waits until the page has read the file.
	pick := func(t *testing.T, ctx context.Context, input, path string) {
		t.Helper()
		kind := strings.TrimSuffix(input, "-file")
		if err := chromedp.Do(ctx,
			chromedp.SetUploadFiles(chromedp.ID(input), []string{path}),
			chromedp.Poll[chromedp.Void](`document.getElementById("`+kind+`-name").textContent.startsWith(`+jsString(filepath.Base(path))+`)`),
		); err != nil {
			t.Fatalf("picking %s: %v", path, err)
		}
	}

	// drop drops files on the page's drop zone, as a user dragging them
	// from a file manager, and waits until the page has read them.
	drop := func(t *testing.T, ctx context.Context, paths ...string) {
		t.Helper()
		type point struct{ X, Y float64 }
		p, err := chromedp.Run(ctx, chromedp.Evaluate[point](`(r => ({X: r.x + r.width/2, Y: r.y + r.height/2}))(document.getElementById("drop").getBoundingClientRect())`))
		if err != nil {
			t.Fatal(err)
		}
		data := &input.DragData{Items: []*input.DragDataItem{}, Files: paths, DragOperationsMask: 1}
		for _, typ := range []input.DispatchDragEventType{input.DispatchDragEventTypeDragEnter, input.DispatchDragEventTypeDragOver, input.DispatchDragEventTypeDrop} {
			if _, err := chromedp.Call(ctx, input.DispatchDragEvent, input.DispatchDragEventParams{Type: typ, X: p.X, Y: p.Y, Data: data}); err != nil {
				t.Fatalf("dropping files (%s): %v", typ, err)
			}
		}
		for _, path := range paths {
			kind := "proof"
			if strings.HasSuffix(path, ".toml") {
				kind = "policy"
			}
			if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](`document.getElementById("`+kind+`-name").textContent.startsWith(`+jsString(filepath.Base(path))+`)`)); err != nil {
				t.Fatalf("the page did not take the dropped %s: %v", path, err)
			}
		}
	}

	type step func(t *testing.T, ctx context.Context)
	at := func(v string) step {
		return func(t *testing.T, ctx context.Context) {
			if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("verify-at"), v)); err != nil {
				t.Fatal(err)
			}
		}
	}
	atCollateral := func(t *testing.T, ctx context.Context) {
		if err := chromedp.Do(ctx, chromedp.WaitEnabled(chromedp.ID("at-collateral")), chromedp.Click(chromedp.ID("at-collateral"))); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(id, value string) step {
		return func(t *testing.T, ctx context.Context) {
			if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID(id), value)); err != nil {
				t.Fatal(err)
			}
		}
	}
	inputHash := hex.EncodeToString(proof.InputHash([]*securedexchange.TensorData{{BytesData: []byte("input bytes")}}))
	allowSimulation := func(t *testing.T, ctx context.Context) {
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("allow-simulation"))); err != nil {
			t.Fatal(err)
		}
	}
	type pageCase struct {
		name          string
		server        string
		rootPEM       []byte // blindfoldTestRootPEM
		proof, policy string
		drop          bool // drop the files rather than pick them
		steps         []step
		verdict       string
		failed        []string
		passed        []string
		notChecked    []string
		warning       string // in the page's warnings
		wantAt        string // the verify-at field after the steps
		summary       string // in the page's summary
		screenshot    string
	}
	tests := []pageCase{
		{
			name: "real SGX quote at its collateral date", server: prod.URL, proof: realProof, policy: realPolicy,
			steps: []step{atCollateral}, verdict: "REFUSED", failed: []string{"binding"},
			passed:     []string{"proof-file", "policy-file", "platform", "quote", "pck-chain", "quote-signature", "qe-identity", "tcb-info", "crls", "collateral-dates", "enclave", "tcb-status", "collateral-policy"},
			notChecked: []string{"signing-key", "signature", "payload"},
			wantAt:     "2025-06-19T10:56:11Z", screenshot: "real-quote.png",
		},
		{
			name: "real SGX quote, one byte of its signature changed", server: prod.URL, proof: realTampered, policy: realPolicy,
			steps: []step{at(realAt.Format(time.RFC3339))}, verdict: "REFUSED", failed: []string{"quote-signature"},
			passed: []string{"quote", "pck-chain"}, notChecked: []string{"qe-identity", "binding", "signature"},
		},
		{
			name: "real SGX quote verified now, its collateral expired, files dropped", server: prod.URL, proof: realProof, policy: realPolicy, drop: true,
			verdict: "REFUSED", failed: []string{"qe-identity", "collateral-dates"}, passed: []string{"quote-signature"},
		},
		{
			name: "synthetic proof, test build", server: test.URL, rootPEM: f.testRoot, proof: synthProof, policy: synthPolicy,
			steps:   []step{at(synthAt.Format(time.RFC3339)), expect("expect-model-id", "synthetic-model"), expect("expect-input-hash", inputHash)},
			verdict: "VERIFIED",
			passed:  []string{"quote", "pck-chain", "quote-signature", "qe-identity", "tcb-info", "crls", "collateral-dates", "enclave", "tcb-status", "binding", "signing-key", "signature", "payload", "expected"},
			warning: "TEST root", screenshot: "synthetic-verified.png",
		},
		{
			name: "synthetic proof, one payload byte flipped, test build", server: test.URL, rootPEM: f.testRoot, proof: synthFlipped, policy: synthPolicy,
			steps: []step{at(synthAt.Format(time.RFC3339))}, verdict: "REFUSED", failed: []string{"signature"},
			passed: []string{"binding", "signing-key"}, notChecked: []string{"payload"},
		},
		{
			name: "synthetic proof, another model expected, test build", server: test.URL, rootPEM: f.testRoot, proof: synthProof, policy: synthPolicy,
			steps:   []step{at(synthAt.Format(time.RFC3339)), expect("expect-model-id", "another-model")},
			verdict: "REFUSED", failed: []string{"expected"}, passed: []string{"signature", "payload"},
		},
		{
			name: "TDX proof, test build", server: test.URL, rootPEM: tdxRoot, proof: tdxProof, policy: tdxPolicy,
			steps: []step{at(synthAt.Format(time.RFC3339))}, verdict: "VERIFIED",
			passed: []string{"platform", "evidence", "binding", "signing-key", "signature", "payload"}, warning: "TEST root",
		},
		{
			name: "synthetic proof, shipped build given the test root", server: prod.URL, rootPEM: f.testRoot, proof: synthProof, policy: synthPolicy,
			steps: []step{at(synthAt.Format(time.RFC3339))}, verdict: "REFUSED", failed: []string{"pck-chain"},
		},
		{
			name: "a verification time that is not RFC 3339", server: prod.URL, proof: realProof, policy: realPolicy,
			steps: []step{at("1 July 2025")}, verdict: "REFUSED", summary: "not an RFC 3339 time",
		},
		{
			name: "an expected input hash that is not a SHA-256", server: prod.URL, proof: realProof, policy: realPolicy,
			steps: []step{expect("expect-input-hash", "abc")}, verdict: "REFUSED", summary: "64 hex digits",
		},
		{
			name: "simulation proof", server: prod.URL, proof: simProof,
			verdict: "REFUSED", failed: []string{"platform"}, notChecked: []string{"signature"},
		},
		{
			name: "simulation proof, simulation allowed", server: prod.URL, proof: simProof, steps: []step{allowSimulation},
			verdict: "SIMULATION", passed: []string{"signing-key", "signature", "payload"}, warning: "SIMULATION MODE",
			screenshot: "simulation.png",
		},
	}
	// BlindAI's own 2022 hardware proofs, when given (blindAIProofsEnv):
	// each verifies at its date, and a copy with the last byte of its
	// signed payload changed is refused at the signature.
	if b := loadBlindAIProofs(t); b != nil {
		for _, p := range b.proofs {
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			tampered := tamperPayload(t, raw)
			tests = append(tests,
				pageCase{name: "BlindAI's proof " + filepath.Base(p), server: prod.URL, proof: p, policy: b.policy,
					steps: []step{at(b.at.Format(time.RFC3339))}, verdict: "VERIFIED", passed: []string{"quote", "pck-chain", "quote-signature", "binding", "signature", "payload"}},
				pageCase{name: "BlindAI's proof " + filepath.Base(p) + ", a payload byte changed", server: prod.URL, proof: write("tampered-"+filepath.Base(p), tampered), policy: b.policy,
					steps: []step{at(b.at.Format(time.RFC3339))}, verdict: "REFUSED", failed: []string{"signature"}},
			)
		}
	} else {
		t.Logf("BlindAI's own hardware proofs are not part of this project's test vectors: set %s to a folder with them, their policy.toml and at.txt to run them too", blindAIProofsEnv)
	}
	// Opened from disk, the page cannot load the verifier, and says so.
	t.Run("opened from file://", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(bctx, time.Minute)
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.Navigate("file://"+filepath.ToSlash(filepath.Join(prodDir, "index.html")))); err != nil {
			t.Fatal(err)
		}
		msg, err := chromedp.Run(ctx, chromedp.Poll[string](`(t => t.includes("could not be loaded") && t)(document.getElementById("loading").textContent)`, chromedp.WithPollingTimeout(20*time.Second)))
		if err != nil {
			t.Fatalf("the page opened from file:// did not say that the verifier could not be loaded: %v", err)
		}
		t.Logf("from file://: %s", msg)
	})

	shots := os.Getenv("BLINDFOLD_SCREENSHOT_DIR")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			load(t, tc.server, tc.rootPEM)
			ctx, cancel := context.WithTimeout(bctx, time.Minute)
			defer cancel()
			switch {
			case tc.drop:
				drop(t, ctx, tc.proof, tc.policy)
			default:
				pick(t, ctx, "proof-file", tc.proof)
				if tc.policy != "" {
					pick(t, ctx, "policy-file", tc.policy)
				}
			}
			for _, s := range tc.steps {
				s(t, ctx)
			}
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("verify")), chromedp.WaitVisible(chromedp.CSS(`#result[data-run="1"]`))); err != nil {
				t.Fatalf("verifying: %v", err)
			}
			res, err := chromedp.Run(ctx, chromedp.Evaluate[pageResult](readPage))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("verdict %s in %s ms in Chromium (%s)", res.Verdict, res.Ms, tc.name)
			if res.Verdict != tc.verdict {
				t.Fatalf("the page says %s, want %s: %s %+v", res.Verdict, tc.verdict, res.Summary, res.Checks)
			}
			status := map[string]string{}
			var failed []string
			for _, c := range res.Checks {
				status[c.ID] = c.Status
				if c.Status == "fail" {
					failed = append(failed, c.ID)
				}
			}
			if !slices.Equal(failed, tc.failed) {
				t.Errorf("failed checks on the page: %v, want %v (%+v)", failed, tc.failed, res.Checks)
			}
			for _, id := range tc.passed {
				if status[id] != "pass" {
					t.Errorf("check %s shows %q, want pass", id, status[id])
				}
			}
			for _, id := range tc.notChecked {
				if status[id] != "not-checked" {
					t.Errorf("check %s shows %q, want not-checked", id, status[id])
				}
			}
			if tc.warning != "" && !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, tc.warning) }) {
				t.Errorf("warnings %q lack %q", res.Warnings, tc.warning)
			}
			if res.TestBuild != (tc.server == test.URL) {
				t.Errorf("test build banner shown: %t", res.TestBuild)
			}
			if !strings.Contains(res.Summary, tc.summary) {
				t.Errorf("summary %q lacks %q", res.Summary, tc.summary)
			}
			if tc.wantAt != "" && res.At != tc.wantAt {
				t.Errorf("verify-at is %q, want %q", res.At, tc.wantAt)
			}
			if shots != "" && tc.screenshot != "" {
				shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
				if err != nil {
					t.Fatal(err)
				}
				// A 256-colour palette and the best compression keep the
				// picture small enough to commit.
				img, err := png.Decode(bytes.NewReader(shot))
				if err != nil {
					t.Fatal(err)
				}
				pal := image.NewPaletted(img.Bounds(), palette.Plan9)
				draw.Draw(pal, pal.Bounds(), img, img.Bounds().Min, draw.Src)
				var buf bytes.Buffer
				if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, pal); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(shots, tc.screenshot), buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}

	mu.Lock()
	defer mu.Unlock()
	if len(requests) == 0 {
		t.Fatal("no network request was seen: the network check proves nothing")
	}
	for _, u := range requests {
		if !strings.HasPrefix(u, prod.URL+"/") && !strings.HasPrefix(u, test.URL+"/") && !strings.HasPrefix(u, "file://"+filepath.ToSlash(prodDir)+"/") {
			t.Errorf("the page requested %s, outside its own server", u)
		}
	}
	for _, e := range exceptions {
		t.Errorf("uncaught exception in the page: %s", e)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r < 0x20 || r == 0x2028 || r == 0x2029:
			b.WriteString(`\u`)
			const hexdigits = "0123456789abcdef"
			b.WriteByte(hexdigits[r>>12&0xf])
			b.WriteByte(hexdigits[r>>8&0xf])
			b.WriteByte(hexdigits[r>>4&0xf])
			b.WriteByte(hexdigits[r&0xf])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
