// The page of the browser verifier: reads the files the user picks or
// drops, calls blindfoldVerify (the Go verifier compiled to WebAssembly,
// cmd/blindfold-verify-wasm) and shows the report. It makes no network
// request besides loading the page's own files.
"use strict";

(function () {
  const MAX_PROOF = 64 << 20;
  const MAX_POLICY = 1 << 20;
  const $ = (id) => document.getElementById(id);
  const state = { proof: null, policy: null, runs: 0 };

  function setStatus(text, isError) {
    const el = $("loading");
    el.textContent = text;
    el.className = isError ? "danger" : "note";
  }

  async function load() {
    const go = new Go();
    try {
      const result = await WebAssembly.instantiateStreaming(fetch("blindfold-verify.wasm"), go.importObject);
      go.run(result.instance);
    } catch (e) {
      setStatus("The verifier could not be loaded (" + e + "). Serve this folder over HTTP; see docs/verify.md.", true);
      return;
    }
    if (!window.blindfoldReady) {
      setStatus("The verifier did not start.", true);
      return;
    }
    $("test-build").hidden = !window.blindfoldTestBuild;
    setStatus("Verifier ready.", false);
    document.body.dataset.ready = "true";
    refresh();
  }

  async function readFile(file, max, what) {
    if (file.size > max) {
      throw new Error("the " + what + " is " + file.size + " bytes, more than " + max);
    }
    return new Uint8Array(await file.arrayBuffer());
  }

  async function take(file, kind) {
    const max = kind === "proof" ? MAX_PROOF : MAX_POLICY;
    try {
      state[kind] = await readFile(file, max, kind + " file");
      $(kind + "-name").textContent = file.name + " (" + file.size + " bytes)";
    } catch (e) {
      state[kind] = null;
      $(kind + "-name").textContent = String(e.message || e);
    }
    refresh();
  }

  function refresh() {
    const ready = document.body.dataset.ready === "true";
    $("verify").disabled = !ready || !state.proof;
    $("at-collateral").disabled = true;
    $("window").textContent = "";
    if (!ready || !state.proof) {
      return;
    }
    const w = JSON.parse(window.blindfoldCollateralWindow(state.proof));
    if (w.error) {
      $("window").textContent = "No collateral dates: " + w.error;
      return;
    }
    state.window = w;
    $("at-collateral").disabled = false;
    $("window").textContent = "The proof's collateral states it is valid from " + w.from + " until " + w.until + ".";
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  const statusLabel = {
    "pass": "PASS", "fail": "FAIL", "not-checked": "not checked",
    "info": "info", "warn": "WARNING"
  };
  const verdictLabel = {
    "VERIFIED": "VERIFIED",
    "SIMULATION": "SIGNATURE VALID, SIMULATION MODE: PROTECTS NOTHING",
    "REFUSED": "REFUSED"
  };

  function show(report, ms) {
    $("result").hidden = false;
    const v = $("verdict");
    v.textContent = verdictLabel[report.verdict] || report.verdict;
    v.dataset.verdict = report.verdict;
    v.className = "verdict " + report.verdict.toLowerCase();
    $("summary").textContent = report.summary;
    const warnings = $("warnings");
    warnings.replaceChildren();
    for (const w of report.warnings || []) {
      warnings.appendChild(el("li", "danger", w));
    }
    const checks = $("checks");
    checks.replaceChildren();
    for (const c of report.checks) {
      const li = el("li", "check " + c.status);
      li.dataset.id = c.id;
      li.dataset.status = c.status;
      li.appendChild(el("span", "status", statusLabel[c.status] || c.status));
      li.appendChild(el("span", "title", c.title));
      if (c.detail) {
        li.appendChild(el("div", "detail", c.detail));
      }
      checks.appendChild(li);
    }
    $("timing").textContent = "Verified at " + report.verifiedAt + "; the check took " + ms.toFixed(1) + " ms in this browser.";
    $("timing").dataset.ms = ms.toFixed(3);
    $("error").textContent = report.error || "none";
    state.runs++;
    $("result").dataset.run = String(state.runs);
  }

  async function verify(ev) {
    if (ev) ev.preventDefault();
    if (!state.proof) return;
    const opts = {
      at: $("verify-at").value.trim(),
      allowSimulation: $("allow-simulation").checked,
      modelId: $("expect-model-id").value,
      modelHash: $("expect-model-hash").value.trim(),
      inputHash: $("expect-input-hash").value.trim()
    };
    const t0 = performance.now();
    let report;
    try {
      report = JSON.parse(window.blindfoldVerify(state.proof, state.policy, opts));
    } catch (e) {
      // The verifier is gone (it should never be): refuse, and say why.
      report = {
        verdict: "REFUSED", summary: "The verifier failed: " + e + ". Reload the page.",
        error: String(e), checks: [], verifiedAt: "not verified"
      };
    }
    show(report, performance.now() - t0);
  }

  $("proof-file").addEventListener("change", (e) => { if (e.target.files[0]) take(e.target.files[0], "proof"); });
  $("policy-file").addEventListener("change", (e) => { if (e.target.files[0]) take(e.target.files[0], "policy"); });
  $("at-collateral").addEventListener("click", () => { if (state.window) $("verify-at").value = state.window.from; });
  $("at-now").addEventListener("click", () => { $("verify-at").value = ""; });
  $("form").addEventListener("submit", verify);

  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    for (const f of e.dataTransfer.files) {
      take(f, f.name.toLowerCase().endsWith(".toml") ? "policy" : "proof");
    }
  });

  load();
})();
