package bench

import "time"

// FormatVersion is the version of the JSON results format.
const FormatVersion = 1

// Results is everything one benchmark run measured; it is written as JSON
// and rendered as docs/benchmarks.md.
type Results struct {
	FormatVersion int            `json:"format_version"`
	StartedAt     time.Time      `json:"started_at"`
	DurationS     float64        `json:"duration_s"`
	Command       string         `json:"command"`
	Machine       Machine        `json:"machine"`
	Settings      Settings       `json:"settings"`
	Models        []ModelResult  `json:"models"`
	Targets       []TargetResult `json:"targets"`
	BlindAI       []BlindAIRatio `json:"blindai_published"`
	// Scaling and Fairness are the many-models and many-tenants sections
	// (absent when not run).
	Scaling  *ScalingResult  `json:"scaling"`
	Fairness *FairnessResult `json:"fairness"`
	// TenantsRun is the run that measured Scaling and Fairness when it
	// was a --tenants-only run merged into earlier results (empty
	// otherwise).
	TenantsRun TenantsRun `json:"tenants_run"`
}

// TenantsRun names a --tenants-only run.
type TenantsRun struct {
	Command   string    `json:"command"`
	StartedAt time.Time `json:"started_at"`
	GitCommit string    `json:"git_commit"`
}

// Machine describes where the benchmark ran.
type Machine struct {
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	MemBytes   int64  `json:"mem_bytes"`
	Kernel     string `json:"kernel"`
	OS         string `json:"os"`
	GoVersion  string `json:"go_version"`
	ORTVersion string `json:"ort_version"`
	GitCommit  string `json:"git_commit"`
}

// Settings are the options the run used.
type Settings struct {
	Quick            bool    `json:"quick"`
	Warmup           int     `json:"warmup"`
	MinRuns          int     `json:"min_runs"`
	MaxRuns          int     `json:"max_runs"`
	LatencyBudgetS   float64 `json:"latency_budget_s"`
	Block            int     `json:"block"`
	Concurrency      []int   `json:"concurrency"`
	ThroughputS      float64 `json:"throughput_s"`
	Uploads          int     `json:"uploads"`
	UploadChunkBytes int     `json:"upload_chunk_bytes"`
	// RunChunkBytes is the size of the pieces the client sends a run's
	// input tensors in (0: the client's default).
	RunChunkBytes  int  `json:"run_chunk_bytes"`
	IntraOpThreads int  `json:"intra_op_threads"`
	InterOpThreads int  `json:"inter_op_threads"`
	NoSpinning     bool `json:"no_spinning"`
	// ScalingCounts are the small-model counts of the scaling section,
	// MediumModels its medium models (0: none) and FairnessS the seconds
	// of each fairness phase (0: none).
	ScalingCounts []int   `json:"scaling_counts"`
	MediumModels  int     `json:"medium_models"`
	FairnessS     float64 `json:"fairness_s"`
	// TenantsOnly skips the per-model measurements.
	TenantsOnly bool `json:"tenants_only"`
}

// ModelResult is what was measured for one model.
type ModelResult struct {
	Name    string   `json:"name"`
	Title   string   `json:"title"`
	Source  string   `json:"source"`
	Bytes   int64    `json:"bytes"`
	SHA256  string   `json:"sha256"`
	Inputs  []string `json:"inputs"`
	Outputs []string `json:"outputs"`

	// Engine is the engine alone, in process; Full and Signed the full
	// path without and with signed replies. ServerEngine is the inference
	// time the server reported for the unsigned runs.
	Engine       Summary `json:"engine"`
	Full         Summary `json:"full"`
	Signed       Summary `json:"signed"`
	ServerEngine Summary `json:"server_engine"`
	// OutputsMatch says whether the full path returned the same bytes as
	// the engine alone for the benchmark input.
	OutputsMatch bool `json:"outputs_match"`

	RatioP50       float64 `json:"ratio_p50"`
	RatioP99       float64 `json:"ratio_p99"`
	SignedRatioP50 float64 `json:"signed_ratio_p50"`
	SignedRatioP99 float64 `json:"signed_ratio_p99"`
	AddedP50US     float64 `json:"added_p50_us"`
	AddedP99US     float64 `json:"added_p99_us"`
	SignedAddedUS  float64 `json:"signed_added_p50_us"`
	// MovedBytes is what one request carries: input plus output bytes.
	// AddedMsPerMB is the added p50 latency per megabyte (10^6 bytes) of
	// it.
	MovedBytes   int64   `json:"moved_bytes"`
	AddedMsPerMB float64 `json:"added_ms_per_mb"`

	Throughput []ThroughputPoint `json:"throughput"`
	Upload     UploadResult      `json:"upload"`
}

// ThroughputPoint compares requests per second at one concurrency level.
type ThroughputPoint struct {
	Concurrency int     `json:"concurrency"`
	EngineRPS   float64 `json:"engine_rps"`
	FullRPS     float64 `json:"full_rps"`
	Ratio       float64 `json:"ratio"`
	// CPU time per request, in µs: the engine alone's (in this process),
	// and the full path's on each side, the client's (this process) and
	// the server's (its process), over the measured window.
	EngineCPUUS float64 `json:"engine_cpu_us"`
	ClientCPUUS float64 `json:"client_cpu_us"`
	ServerCPUUS float64 `json:"server_cpu_us"`
}

// UploadResult measures sending a model to a fresh server and loading it.
type UploadResult struct {
	Runs       int `json:"runs"`
	ChunkBytes int `json:"chunk_bytes"`
	// TransferS is the median time until the client had handed the last
	// chunk to the connection; MBps is the model size over it (MB = 10^6
	// bytes).
	TransferS float64 `json:"transfer_s"`
	MBps      float64 `json:"mb_per_s"`
	// ReadyS is the median time from the first chunk until the server's
	// reply (the model is loaded and can run); ReadyMBps is the size over it.
	ReadyS    float64 `json:"ready_s"`
	ReadyMBps float64 `json:"ready_mb_per_s"`
	// EngineLoadS is the time the engine alone takes to load the model
	// from memory, in the benchmark process.
	EngineLoadS float64 `json:"engine_load_s"`
	// Server memory during the first upload and load into a fresh server:
	// RSS just before, the peak (VmHWM after a reset, or the largest
	// sampled VmRSS), and RSS once loaded.
	RSSBeforeBytes int64   `json:"rss_before_bytes"`
	PeakBytes      int64   `json:"peak_bytes"`
	RSSAfterBytes  int64   `json:"rss_after_bytes"`
	PeakAddedBytes int64   `json:"peak_added_bytes"`
	PeakAddedRatio float64 `json:"peak_added_ratio"`
	PeakTotalRatio float64 `json:"peak_total_ratio"`
	PeakMethod     string  `json:"peak_method"`
}

// TargetResult says whether one target holds.
type TargetResult struct {
	Name     string  `json:"name"`
	Target   string  `json:"target"`
	Measured string  `json:"measured"`
	Value    float64 `json:"value"`
	Limit    float64 `json:"limit"`
	Met      bool    `json:"met"`
	Margin   string  `json:"margin"`
}

// BlindAIRatio is one of BlindAI's published slowdowns of its SGX enclave
// against ONNX Runtime on the same Xeon.
type BlindAIRatio struct {
	Model string  `json:"model"`
	Ratio float64 `json:"ratio"`
}

// BlindAIPublished are BlindAI's published ratios.
var BlindAIPublished = []BlindAIRatio{
	{"BERT", 1.4}, {"Wav2vec2", 4.2}, {"Facenet", 2.4}, {"YOLOv5s", 3.4}, {"GPT-2 generation", 1.5},
}
