// Package engine runs ONNX models with ONNX Runtime. It is the only part of
// Blindfold that uses cgo: the ONNX Runtime shared library is loaded at run
// time (see FindLibrary), models are loaded from memory and never written to
// disk, and tensors cross the boundary as tensor.Tensor values.
//
// The engine works around limits of the Go binding
// (github.com/yalue/onnxruntime_go v1.27.0): the binding cannot hand back
// float16/bfloat16 or rank-0 outputs that ONNX Runtime allocates, so the
// engine allocates those itself (a float16/bfloat16 output's dynamic
// dimensions must be named after input dimensions so that its size is known
// before the run); and the binding cannot run a model without inputs, so
// Load refuses such models with ErrNoInputs. Cancellation uses the binding's
// RunOptions terminate flag.
//
// Every model is hostile: before ONNX Runtime sees one, Load walks all of
// it (scan.go) and refuses tensors whose data would be read from a file
// (external data) and models past the node, function-call and initializer
// limits that bound ONNX Runtime's load time. ONNX Runtime's own messages
// are kept apart from what clients may see (Error, Reason).
//
// Each Run creates and destroys its own ONNX Runtime values; pooling them
// (and the per-run RunOptions) is a possible later optimisation.
package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/blindfold-ai/blindfold/internal/bufpool"
	"github.com/blindfold-ai/blindfold/tensor"
)

// Errors returned by the engine. Test them with errors.Is.
var (
	// ErrInvalidModel is wrapped by Load when ONNX Runtime cannot parse or
	// load the model; the message includes ONNX Runtime's reason.
	ErrInvalidModel = errors.New("engine: invalid model")
	// ErrNoInputs is returned by Load for a model without inputs, which
	// the binding cannot run.
	ErrNoInputs = errors.New("engine: model has no inputs")
	// ErrUnsupportedType is wrapped by Load when an input or output is not
	// a tensor of one of the 13 tensor.DType element types (strings,
	// sequences, maps, ...). The message names the input or output.
	ErrUnsupportedType = errors.New("engine: unsupported input or output type")
	// ErrUnsupportedModel is wrapped by Load when a model uses a tensor
	// type in a way the engine cannot serve: a float16/bfloat16 rank-0
	// input or output, or a float16/bfloat16 output with a dynamic
	// dimension that is not named (dim_param) after an input dimension.
	ErrUnsupportedModel = errors.New("engine: unsupported model")
	// ErrInvalidInput is wrapped by every *InputError.
	ErrInvalidInput = errors.New("engine: invalid input")
	// ErrRun wraps ONNX Runtime failures during Run (for example shapes
	// that do not broadcast).
	ErrRun = errors.New("engine: run failed")
	// ErrMemoryLimit is wrapped (with ErrRun) when a run fails because ONNX
	// Runtime could not allocate memory: past Options.MemoryLimit, or the
	// machine's.
	ErrMemoryLimit = errors.New("engine: out of memory for this run")
	// ErrClosed is returned by Run on a closed Session.
	ErrClosed = errors.New("engine: session closed")
	// ErrOutputTooLarge is wrapped by Run when the outputs would exceed
	// WithMaxOutputBytes, or when the memory the engine allocates for
	// outputs would exceed Options.MemoryLimit (else the machine's
	// memory). Outputs whose size is known before the run are checked
	// before anything runs or is allocated.
	ErrOutputTooLarge = errors.New("engine: outputs too large")
	// ErrExternalData is wrapped by Load when a tensor of the model (an
	// initializer, a node attribute, a sparse tensor, in any graph,
	// subgraph or function) keeps its data outside the model: ONNX
	// Runtime would read it from a file. The message names the tensor.
	ErrExternalData = errors.New("engine: model refers to external data")
	// ErrTooManyInitializers is wrapped by Load when the model has more
	// initializers (dense and sparse, in every graph) than
	// Options.MaxModelInitializers allows. The model is refused before
	// ONNX Runtime sees it.
	ErrTooManyInitializers = errors.New("engine: model has too many initializers")
	// ErrTooManyNodes is wrapped by Load when the model has more nodes
	// than Options.MaxModelNodes allows (counting subgraphs, and each call
	// of a model-local function as the nodes of its body, as ONNX Runtime
	// inlines them), or calls its local functions more than 5,000 times.
	// The model is refused before ONNX Runtime sees it.
	ErrTooManyNodes = errors.New("engine: model has too many nodes")
)

// Errors returns every sentinel error of the engine (ErrLibraryNotFound
// included), for callers that map each to a status of their own. A test
// keeps the list complete.
func Errors() []error {
	return []error{
		ErrLibraryNotFound, ErrInvalidModel, ErrNoInputs, ErrUnsupportedType, ErrUnsupportedModel,
		ErrInvalidInput, ErrRun, ErrMemoryLimit, ErrClosed, ErrExternalData, ErrTooManyNodes,
		ErrTooManyInitializers, ErrOutputTooLarge,
	}
}

// InputError says why an input does not fit the model. It wraps
// ErrInvalidInput.
type InputError struct {
	// Input is the model's name for the input ("" when the error is about
	// the input count as a whole).
	Input string
	// Reason says what was expected and what was given.
	Reason string
}

// Error returns `input "x": <reason>`.
func (e *InputError) Error() string {
	if e.Input == "" {
		return "inputs: " + e.Reason
	}
	return fmt.Sprintf("input %q: %s", e.Input, e.Reason)
}

// Unwrap returns ErrInvalidInput.
func (e *InputError) Unwrap() error { return ErrInvalidInput }

// Options configure Open.
type Options struct {
	// LibraryPath is the path to libonnxruntime.so.1; "" means
	// FindLibrary("").
	LibraryPath string
	// IntraOpThreads is the size of the intra-op thread pool that every
	// session of the process shares (threads within an operator); 0 means
	// ONNX Runtime's default, one per core. Like the other thread settings
	// it is fixed by the first Open of the process.
	IntraOpThreads int
	// InterOpThreads is the size of the shared inter-op thread pool
	// (threads across operators, used by models run in parallel
	// execution mode); 0 means ONNX Runtime's default.
	InterOpThreads int
	// MemoryLimit caps, in bytes, what ONNX Runtime's CPU allocations may
	// take across every session of the process (weights and intermediate
	// tensors); an allocation past it fails the load or run with an error
	// instead of exhausting the machine. 0 means no cap. It is fixed by the
	// first Open of the process.
	MemoryLimit int64
	// DisableSpinning stops ONNX Runtime's shared thread pools from busy-waiting
	// for work between and after operators. Spinning lowers one inference's
	// latency when the cores are otherwise idle; without it the threads
	// sleep, leaving the cores to the rest of the process (gRPC, TLS) and
	// to other runs.
	DisableSpinning bool
	// MaxModelNodes caps the nodes of a model as ONNX Runtime will hold
	// them: the main graph's and every subgraph's, with each call of a
	// model-local function counted as the nodes of its body (calls inside
	// it expanded in turn). Load refuses a larger model with
	// ErrTooManyNodes before ONNX Runtime parses it. 0 means
	// DefaultMaxModelNodes.
	MaxModelNodes int
	// MaxModelInitializers caps the initializers of a model (dense and
	// sparse, in every graph); Load refuses more with
	// ErrTooManyInitializers. 0 means DefaultMaxModelInitializers.
	MaxModelInitializers int
	// EmptyDir is a folder that holds no file and that nobody else can
	// write to; ONNX Runtime is pointed at it for external data, as a
	// second line behind Load's refusal of models that name external
	// data. "" means a path under /dev/null, where no file can exist.
	EmptyDir string
}

// RunOption changes one Run.
type RunOption func(*runConfig)

type runConfig struct {
	maxOut int64
	pooled bool
}

// WithPooledOutputs makes Run write the outputs whose shape is known
// before the run into buffers of Blindfold's internal buffer pool
// (internal/bufpool), which needs no zeroing when they come from earlier
// runs. The pool keeps a reference to each such buffer until it is given
// back, so the caller must give every output's Data back with bufpool.Put,
// once, when nothing reads it any more: the server does, once the reply
// is written.
func WithPooledOutputs() RunOption {
	return func(c *runConfig) { c.pooled = true }
}

// WithMaxOutputBytes caps the bytes of the run's outputs, all outputs
// together (n <= 0: no cap). An output whose shape is known before the run
// (static, or following input dimensions) is checked before any of its
// memory is allocated and before the run starts; the others as soon as
// ONNX Runtime returns them, before they are handed on. Past the cap, Run
// fails with ErrOutputTooLarge.
func WithMaxOutputBytes(n int64) RunOption {
	return func(c *runConfig) { c.maxOut = n }
}

// Runtime is a handle on the process-wide ONNX Runtime environment, from
// which models are loaded. It is safe for concurrent use.
type Runtime struct {
	path  string
	limit int64
	// outMem counts the bytes of output buffers the engine has allocated
	// for runs in progress (shared by the Runtimes WithModelLimits
	// makes); they may not pass outMemCap (the memory limit, else the
	// machine's memory).
	outMem    *atomic.Int64
	outMemCap int64
	// limits are the node and initializer limits of a model.
	limits ModelLimits
	// emptyDir is ONNX Runtime's folder for external data.
	emptyDir string
	// runOpts holds idle ONNX Runtime run options for reuse: a run that
	// can be cancelled needs one, and making one per request costs more
	// than small models take to run.
	runOpts chan *ort.RunOptions
}

// runOptionsPool bounds the idle run options a Runtime keeps.
const runOptionsPool = 64

// The binding keeps one global ONNX Runtime environment, so the engine does
// too: the first Open initialises it and it lives until the process exits.
var env struct {
	sync.Mutex
	path  string
	limit int64
}

// Open initialises ONNX Runtime from the library that opts (or FindLibrary)
// selects. The environment is shared by the whole process: a second Open
// with the same library path shares it, and one with a different path
// fails.
func Open(opts Options) (*Runtime, error) {
	if opts.IntraOpThreads < 0 || opts.InterOpThreads < 0 {
		return nil, fmt.Errorf("engine: thread counts must not be negative (intra-op %d, inter-op %d)", opts.IntraOpThreads, opts.InterOpThreads)
	}
	limits, err := ModelLimits{Nodes: opts.MaxModelNodes, Initializers: opts.MaxModelInitializers}.withDefaults()
	if err != nil {
		return nil, err
	}
	if opts.EmptyDir == "" {
		opts.EmptyDir = filepath.Join(os.DevNull, "blindfold-no-external-data")
	} else if !filepath.IsAbs(opts.EmptyDir) {
		return nil, fmt.Errorf("engine: the empty folder must be an absolute path, got %q", opts.EmptyDir)
	}
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		return nil, errors.New("engine: tensors are little-endian and this host is not; it is not supported")
	}
	path, err := FindLibrary(opts.LibraryPath)
	if err != nil {
		return nil, err
	}
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	env.Lock()
	defer env.Unlock()
	if opts.MemoryLimit < 0 {
		return nil, fmt.Errorf("engine: memory limit must not be negative, got %d", opts.MemoryLimit)
	}
	switch {
	case env.path == path && env.limit != opts.MemoryLimit:
		return nil, fmt.Errorf("engine: ONNX Runtime already runs with a memory limit of %d bytes in this process; cannot also use %d", env.limit, opts.MemoryLimit)
	case env.path == path:
	case env.path != "":
		return nil, fmt.Errorf("engine: ONNX Runtime is already initialised from %s in this process; cannot also use %s", env.path, path)
	case ort.IsInitialized():
		return nil, errors.New("engine: ONNX Runtime was initialised outside the engine")
	default:
		if err := createGlobalThreadPools(path, opts.IntraOpThreads, opts.InterOpThreads, !opts.DisableSpinning); err != nil {
			return nil, err
		}
		ort.SetSharedLibraryPath(path)
		if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
			return nil, fmt.Errorf("engine: initialising ONNX Runtime from %s: %w", path, err)
		}
		if opts.MemoryLimit > 0 {
			if err := registerLimitedAllocator(opts.MemoryLimit); err != nil {
				return nil, err
			}
		}
		env.path, env.limit = path, opts.MemoryLimit
	}
	outCap := opts.MemoryLimit
	if outCap == 0 {
		outCap = totalMemory()
	}
	return &Runtime{path: path, limit: opts.MemoryLimit,
		limits: limits, emptyDir: opts.EmptyDir,
		outMem: new(atomic.Int64), outMemCap: outCap,
		runOpts: make(chan *ort.RunOptions, runOptionsPool)}, nil
}

// ModelLimits bound what one model may hold; Load checks them before ONNX
// Runtime sees the model. A zero field means its default.
type ModelLimits struct {
	// Nodes: see Options.MaxModelNodes (default DefaultMaxModelNodes).
	Nodes int
	// Initializers: see Options.MaxModelInitializers (default
	// DefaultMaxModelInitializers).
	Initializers int
}

func (l ModelLimits) withDefaults() (ModelLimits, error) {
	if l.Nodes < 0 || l.Initializers < 0 {
		return l, fmt.Errorf("engine: model limits must not be negative, got %d nodes and %d initializers", l.Nodes, l.Initializers)
	}
	if l.Nodes == 0 {
		l.Nodes = DefaultMaxModelNodes
	}
	if l.Initializers == 0 {
		l.Initializers = DefaultMaxModelInitializers
	}
	return l, nil
}

// WithModelLimits returns a Runtime that shares r's ONNX Runtime
// environment and settings but loads models under limits.
func (r *Runtime) WithModelLimits(limits ModelLimits) (*Runtime, error) {
	l, err := limits.withDefaults()
	if err != nil {
		return nil, err
	}
	c := *r
	c.limits = l
	return &c, nil
}

// LibraryPath returns the path of the loaded ONNX Runtime library.
func (r *Runtime) LibraryPath() string { return r.path }

// Version returns the ONNX Runtime version string, such as "1.30.0".
func (r *Runtime) Version() string { return ort.GetVersion() }

// TensorSpec describes one model input or output. A negative dimension is
// dynamic; an empty, non-nil Shape is a scalar (rank 0); a nil Shape means
// the model does not declare the rank, so any rank is accepted.
type TensorSpec struct {
	Name  string
	DType tensor.DType
	Shape []int64
}

// String returns, for example, `x float32[?,4]` (or `x float32[...]` when
// the rank is unknown).
func (t TensorSpec) String() string {
	if t.Shape == nil {
		return fmt.Sprintf("%s %s[...]", t.Name, t.DType)
	}
	dims := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		if d < 0 {
			dims[i] = "?"
		} else {
			dims[i] = fmt.Sprint(d)
		}
	}
	return fmt.Sprintf("%s %s[%s]", t.Name, t.DType, strings.Join(dims, ","))
}

func (t TensorSpec) clone() TensorSpec {
	if t.Shape != nil {
		t.Shape = append([]int64{}, t.Shape...)
	}
	return t
}

func (t TensorSpec) static() bool {
	for _, d := range t.Shape {
		if d < 0 {
			return false
		}
	}
	return true
}

// outputKind says who allocates an output's memory.
type outputKind int

const (
	// outAuto: ONNX Runtime allocates; the binding copies into Go memory.
	outAuto outputKind = iota
	// outBuffer: the engine allocates a byte buffer before the run, so its
	// size is checked before any memory is taken: every output with a
	// static shape, and float16/bfloat16 outputs (which the binding copies
	// wrongly), whose shape may also follow input dimensions (outDims).
	outBuffer
	// outScalar: the engine allocates a typed rank-0 value (the binding
	// cannot wrap rank-0 outputs it did not allocate).
	outScalar
)

// dimSource says which input dimension gives the size of a dynamic output
// dimension: dimension dim of input in.
type dimSource struct{ in, dim int }

// dimSources finds, for each dynamic dimension of a float16/bfloat16 output,
// an input dimension with the same dim_param name. ONNX Runtime cannot hand
// such outputs back through the binding, so the engine allocates them and
// must know their shape before the run.
func (s *Session) dimSources(out TensorSpec, declIn map[string][]string, declOut []string) ([]dimSource, error) {
	src := make([]dimSource, len(out.Shape))
	for j, d := range out.Shape {
		src[j] = dimSource{in: -1}
		if d >= 0 {
			continue
		}
		name := ""
		if j < len(declOut) && len(declOut) == len(out.Shape) {
			name = declOut[j]
		}
	search:
		for k, in := range s.inputs {
			names := declIn[in.Name]
			if name == "" || len(names) != len(in.Shape) {
				continue
			}
			for l, n := range names {
				if n == name && in.Shape[l] < 0 {
					src[j] = dimSource{in: k, dim: l}
					break search
				}
			}
		}
		if src[j].in < 0 {
			return nil, fmt.Errorf("%w: output %q is %s with dynamic dimension %d, which no input dimension determines; %s outputs need a static shape or dimensions named (dim_param) like an input's",
				ErrUnsupportedModel, out.Name, out.DType, j, out.DType)
		}
	}
	return src, nil
}

// Session is a loaded model. It is safe for concurrent use: many Run calls
// may proceed at once.
type Session struct {
	inputs   []TensorSpec
	outputs  []TensorSpec
	outKinds []outputKind
	outDims  [][]dimSource // for outBuffer outputs with dynamic dimensions

	mu     sync.RWMutex // held for reading by each Run, for writing by Close
	closed bool
	sess   *ort.DynamicAdvancedSession
	rt     *Runtime
}

// Load loads a model from its bytes in memory. The bytes are not written to
// disk and not retained. Before ONNX Runtime sees the model, Load walks all
// of it (subgraphs, functions, training graphs) and refuses, with
// ErrExternalData, any tensor whose data would be read from a file, and,
// with ErrTooManyNodes, a model past the node limit. Load fails with
// ErrInvalidModel when the model is malformed or ONNX Runtime rejects it
// (an *Error, whose Reason is safe to show a client), ErrNoInputs when it
// has no inputs, ErrUnsupportedType or ErrUnsupportedModel when an input or
// output cannot be served.
func (r *Runtime) Load(model []byte) (*Session, error) {
	if len(model) == 0 {
		return nil, fmt.Errorf("%w: the model is empty", ErrInvalidModel)
	}
	if err := scanModel(model, r.limits); err != nil {
		return nil, err
	}
	return r.load(model)
}

// load loads a model that scanModel accepted.
func (r *Runtime) load(model []byte) (*Session, error) {
	// The binding needs the input and output names to create a session. They
	// are read from the model's bytes, not from a throw-away session, so the
	// weights are loaded once.
	ins, outs, err := modelIO(model)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidModel, err)
	}
	if len(ins) == 0 {
		return nil, ErrNoInputs
	}
	s := &Session{rt: r}
	if s.inputs, err = specs("input", ins); err != nil {
		return nil, err
	}
	if s.outputs, err = specs("output", outs); err != nil {
		return nil, err
	}
	declIn, declOut, _ := declaredDims(model)
	unknownRank(s.inputs, declIn)
	unknownRank(s.outputs, declOut)
	for _, in := range s.inputs {
		if in.Shape != nil && len(in.Shape) == 0 && dtypes[in.DType].newScalar == nil {
			return nil, fmt.Errorf("%w: input %q is a %s scalar (rank 0), which the engine cannot pass to ONNX Runtime", ErrUnsupportedModel, in.Name, in.DType)
		}
	}
	s.outKinds = make([]outputKind, len(s.outputs))
	s.outDims = make([][]dimSource, len(s.outputs))
	for i, out := range s.outputs {
		half := out.DType == tensor.F16 || out.DType == tensor.BF16
		switch {
		case half && out.Shape == nil:
			return nil, fmt.Errorf("%w: output %q is %s with no declared shape; %s outputs need a static shape or dimensions named (dim_param) like an input's", ErrUnsupportedModel, out.Name, out.DType, out.DType)
		case half && len(out.Shape) == 0:
			return nil, fmt.Errorf("%w: output %q is a %s scalar (rank 0), which the engine cannot receive from ONNX Runtime", ErrUnsupportedModel, out.Name, out.DType)
		case half:
			s.outKinds[i] = outBuffer
			if out.static() {
				break
			}
			if s.outDims[i], err = s.dimSources(out, declIn, declOut[out.Name]); err != nil {
				return nil, err
			}
		case out.Shape == nil:
			s.outKinds[i] = outAuto
		case len(out.Shape) == 0:
			s.outKinds[i] = outScalar
		case out.static():
			// Known before the run: checked against the caps and
			// allocated by the engine, so the binding does not copy it.
			s.outKinds[i] = outBuffer
		}
	}

	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("engine: creating session options: %w", err)
	}
	defer so.Destroy()
	// Every session runs on the environment's shared thread pools (sized
	// by the first Open), so threads do not grow with the models loaded.
	if err := useGlobalThreads(so); err != nil {
		return nil, err
	}
	// Model bytes are ONNX, never ONNX Runtime's own format; external data,
	// which Load refuses, would be looked for only in the empty folder.
	for _, kv := range [][2]string{
		{"session.load_model_format", "ONNX"},
		{"session.model_external_initializers_file_folder_path", r.emptyDir},
	} {
		if err := so.AddSessionConfigEntry(kv[0], kv[1]); err != nil {
			return nil, fmt.Errorf("engine: setting %s: %w", kv[0], err)
		}
	}
	if r.limit > 0 {
		// Allocate from the shared, capped arena (see registerLimitedAllocator).
		if err := so.AddSessionConfigEntry("session.use_env_allocators", "1"); err != nil {
			return nil, fmt.Errorf("engine: using the shared allocator: %w", err)
		}
	}
	inNames := make([]string, len(s.inputs))
	for i, in := range s.inputs {
		inNames[i] = in.Name
	}
	outNames := make([]string, len(s.outputs))
	for i, out := range s.outputs {
		outNames[i] = out.Name
	}
	s.sess, err = ort.NewDynamicAdvancedSessionWithONNXData(model, inNames, outNames, so)
	if err != nil {
		releaseMemory()
		return nil, ortError(ErrInvalidModel, err)
	}
	return s, nil
}

// unknownRank sets Shape to nil for each spec that ONNX Runtime reports
// as rank 0 but whose declaration has no shape at all.
func unknownRank(specs []TensorSpec, declared map[string][]string) {
	for i, t := range specs {
		if d, ok := declared[t.Name]; ok && d == nil && len(t.Shape) == 0 {
			specs[i].Shape = nil
		}
	}
}

// specs converts the binding's descriptions of inputs or outputs.
func specs(kind string, infos []ort.InputOutputInfo) ([]TensorSpec, error) {
	out := make([]TensorSpec, len(infos))
	for i, info := range infos {
		if info.OrtValueType != ort.ONNXTypeTensor {
			return nil, fmt.Errorf("%w: %s %q is %s, not a dense tensor", ErrUnsupportedType, kind, info.Name, valueKind(info.OrtValueType))
		}
		d, ok := fromORT(info.DataType)
		if !ok {
			return nil, fmt.Errorf("%w: %s %q has element type %s", ErrUnsupportedType, kind, info.Name, ortTypeName(info.DataType))
		}
		shape := make([]int64, len(info.Dimensions))
		for j, dim := range info.Dimensions {
			if dim < 0 {
				dim = -1
			}
			shape[j] = dim
		}
		out[i] = TensorSpec{Name: info.Name, DType: d, Shape: shape}
	}
	return out, nil
}

func valueKind(t ort.ONNXType) string {
	switch t {
	case ort.ONNXTypeSequence:
		return "a sequence"
	case ort.ONNXTypeMap:
		return "a map"
	case ort.ONNXTypeOptional:
		return "an optional"
	case ort.ONNXTypeSparseTensor:
		return "a sparse tensor"
	case ort.ONNXTypeOpaque:
		return "an opaque value"
	}
	return "of an unknown kind"
}

// Inputs returns the model's inputs in the model's order.
func (s *Session) Inputs() []TensorSpec { return cloneSpecs(s.inputs) }

// Outputs returns the model's outputs in the model's order.
func (s *Session) Outputs() []TensorSpec { return cloneSpecs(s.outputs) }

func cloneSpecs(in []TensorSpec) []TensorSpec {
	out := make([]TensorSpec, len(in))
	for i, t := range in {
		out[i] = t.clone()
	}
	return out
}

// CheckInputs checks inputs, given in the model's order, against the model:
// their count, names (when set), element types, ranks, static dimensions
// and data lengths. It returns an *InputError for the first problem.
// Tensors with a zero-sized dimension (no elements) are valid.
func (s *Session) CheckInputs(inputs []tensor.Tensor) error {
	if len(inputs) < len(s.inputs) {
		return &InputError{Input: s.inputs[len(inputs)].Name, Reason: fmt.Sprintf("missing (expected %d inputs, got %d)", len(s.inputs), len(inputs))}
	}
	if len(inputs) > len(s.inputs) {
		return &InputError{Reason: fmt.Sprintf("expected %d inputs, got %d", len(s.inputs), len(inputs))}
	}
	for i, spec := range s.inputs {
		if err := checkInput(i, spec, inputs[i]); err != nil {
			return err
		}
	}
	return nil
}

func checkInput(i int, spec TensorSpec, in tensor.Tensor) error {
	bad := func(format string, args ...any) error {
		return &InputError{Input: spec.Name, Reason: fmt.Sprintf(format, args...)}
	}
	if in.Name != "" && in.Name != spec.Name {
		return bad("input %d is named %q; inputs must be given in the model's order", i, in.Name)
	}
	if in.DType != spec.DType {
		return bad("expected %s, got %s", spec.DType, in.DType)
	}
	if spec.Shape == nil && len(in.Shape) == 0 && dtypes[in.DType].newScalar == nil {
		return bad("%s scalars (rank 0) are not supported", in.DType)
	}
	if spec.Shape != nil && len(in.Shape) != len(spec.Shape) {
		return bad("expected rank %d, got %d (shape %v)", len(spec.Shape), len(in.Shape), in.Shape)
	}
	for j, d := range in.Shape {
		switch {
		case d < 0:
			return bad("dimension %d is negative (%d)", j, d)
		case spec.Shape != nil && spec.Shape[j] >= 0 && d != spec.Shape[j]:
			return bad("dimension %d must be %d, got %d", j, spec.Shape[j], d)
		}
	}
	want, err := tensor.ByteSize(in.DType, in.Shape)
	if err != nil {
		return bad("shape %v: %v", in.Shape, err)
	}
	if int64(len(in.Data)) != want {
		return bad("%s%v needs %d bytes of data, got %d", in.DType, in.Shape, want, len(in.Data))
	}
	return nil
}

// Run runs the model on inputs, given in the model's order (see
// CheckInputs, which Run applies first). Input data is read in place and
// not retained after Run returns. The outputs come in the model's order,
// each with its own Data. Run returns ctx.Err() (wrapped) when ctx is done
// before or during the run: a running inference is asked to stop through
// ONNX Runtime's terminate flag. ONNX Runtime failures wrap ErrRun. Outputs
// over WithMaxOutputBytes, or output buffers the engine would allocate past
// the memory limit (else the machine's memory), fail with
// ErrOutputTooLarge; empty tensors (a zero dimension) are valid both ways.
func (s *Session) Run(ctx context.Context, inputs []tensor.Tensor, opts ...RunOption) (result []tensor.Tensor, err error) {
	var cfg runConfig
	for _, o := range opts {
		o(&cfg)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("engine: run not started: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	if err := s.CheckInputs(inputs); err != nil {
		return nil, err
	}

	ins := make([]ort.Value, len(inputs))
	outs := make([]ort.Value, len(s.outputs))
	defer func() {
		for _, v := range ins {
			if v != nil {
				v.Destroy()
			}
		}
		for _, v := range outs {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	// Sizes of the outputs the engine allocates, checked against the
	// caps before anything is allocated or run.
	shapes := make([][]int64, len(s.outputs))
	sizes := make([]int64, len(s.outputs))
	var planned int64
	for i, out := range s.outputs {
		if s.outKinds[i] != outBuffer {
			continue
		}
		shapes[i] = append([]int64{}, out.Shape...)
		for j, src := range s.outDims[i] {
			if src.in >= 0 {
				shapes[i][j] = inputs[src.in].Shape[src.dim]
			}
		}
		n, err := tensor.ByteSize(out.DType, shapes[i])
		if err != nil || n > math.MaxInt64-planned {
			return nil, fmt.Errorf("%w: output %q: shape %v cannot be held in memory", ErrOutputTooLarge, out.Name, shapes[i])
		}
		sizes[i] = n
		planned += n
	}
	if cfg.maxOut > 0 && planned > cfg.maxOut {
		return nil, fmt.Errorf("%w: the outputs take %d bytes for these inputs, over the limit of %d bytes", ErrOutputTooLarge, planned, cfg.maxOut)
	}
	if planned > 0 {
		if s.rt.outMem.Add(planned) > s.rt.outMemCap {
			s.rt.outMem.Add(-planned)
			return nil, fmt.Errorf("%w: %w: the outputs take %d bytes for these inputs, more than the engine's memory limit (or the machine's memory) leaves free", ErrOutputTooLarge, ErrMemoryLimit, planned)
		}
		defer s.rt.outMem.Add(-planned)
	}

	for i, in := range inputs {
		var err error
		if len(in.Shape) == 0 {
			ins[i], err = dtypes[in.DType].newScalar(in.Data)
		} else {
			ins[i], err = ort.NewCustomDataTensor(ort.Shape(in.Shape), backing(aligned(in.Data)), dtypes[in.DType].ort)
		}
		if err != nil {
			return nil, fmt.Errorf("engine: input %q: creating ONNX Runtime tensor: %w", s.inputs[i].Name, err)
		}
	}
	buffers := make([][]byte, len(s.outputs))
	defer func() {
		if err != nil { // nobody gets these outputs: zeroed (and reused if pooled)
			for _, b := range buffers {
				bufpool.Put(b)
			}
		}
	}()
	for i, out := range s.outputs {
		var err error
		switch s.outKinds[i] {
		case outBuffer:
			if cfg.pooled {
				buffers[i] = bufpool.Get(int(sizes[i]))
			} else {
				buffers[i] = alignedBuffer(int(sizes[i]))
			}
			outs[i], err = ort.NewCustomDataTensor(ort.Shape(shapes[i]), backing(buffers[i]), dtypes[out.DType].ort)
		case outScalar:
			outs[i], err = dtypes[out.DType].emptyScalar()
		}
		if err != nil {
			return nil, fmt.Errorf("engine: output %q: allocating: %w", out.Name, err)
		}
	}

	if err := s.run(ctx, ins, outs); err != nil {
		return nil, err
	}
	// Outputs that ONNX Runtime sized during the run: checked before they
	// are handed on (the binding has copied them already, inside the
	// engine's memory limit).
	total := planned
	for i, spec := range s.outputs {
		if s.outKinds[i] != outAuto {
			continue
		}
		n, err := tensor.ByteSize(spec.DType, outs[i].GetShape())
		if err != nil || n > math.MaxInt64-total {
			return nil, fmt.Errorf("%w: output %q has shape %v", ErrOutputTooLarge, spec.Name, outs[i].GetShape())
		}
		total += n
	}
	if cfg.maxOut > 0 && total > cfg.maxOut {
		return nil, fmt.Errorf("%w: the outputs took %d bytes for these inputs, over the limit of %d bytes", ErrOutputTooLarge, total, cfg.maxOut)
	}

	result = make([]tensor.Tensor, len(s.outputs))
	for i, spec := range s.outputs {
		v := outs[i]
		t := tensor.Tensor{Name: spec.Name, DType: spec.DType}
		var ok bool
		switch s.outKinds[i] {
		case outBuffer:
			t.Shape, t.Data, ok = shapes[i], buffers[i], true
		case outScalar:
			t.Shape = []int64{}
			t.Data, ok = dtypes[spec.DType].scalarBytes(v)
		case outAuto:
			t.Shape = append([]int64{}, v.GetShape()...)
			if ops := dtypes[spec.DType]; ops.tensorBytes != nil {
				t.Data, ok = ops.tensorBytes(v)
			}
		}
		if !ok {
			return nil, fmt.Errorf("%w: output %q: ONNX Runtime returned an unexpected value type %T", ErrRun, spec.Name, v)
		}
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("%w: output %q: %v", ErrRun, spec.Name, err)
		}
		result[i] = t
	}
	return result, nil
}

// run calls ONNX Runtime, stopping it through a RunOptions terminate flag
// if ctx ends meanwhile.
func (s *Session) run(ctx context.Context, ins, outs []ort.Value) error {
	var opts *ort.RunOptions
	if ctx.Done() != nil {
		var err error
		if opts, err = s.rt.takeRunOptions(); err != nil {
			return err
		}
		var mu sync.Mutex // orders Terminate before the options are reused or destroyed
		stop := context.AfterFunc(ctx, func() {
			mu.Lock()
			defer mu.Unlock()
			opts.Terminate()
		})
		defer func() {
			clean := stop() // false: Terminate ran or is running
			mu.Lock()
			defer mu.Unlock()
			s.rt.giveRunOptions(opts, clean)
		}()
	}
	err := s.sess.RunWithOptions(ins, outs, opts)
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("engine: run stopped: %w", cerr)
	}
	if isAllocationFailure(err) {
		e := ortError(ErrMemoryLimit, err)
		e.Reason = "ONNX Runtime could not allocate the memory this run needs"
		return fmt.Errorf("%w: %w", ErrRun, e)
	}
	return ortError(ErrRun, err)
}

// takeRunOptions returns idle run options, or new ones.
func (r *Runtime) takeRunOptions() (*ort.RunOptions, error) {
	select {
	case o := <-r.runOpts:
		return o, nil
	default:
	}
	o, err := ort.NewRunOptions()
	if err != nil {
		return nil, fmt.Errorf("engine: creating run options: %w", err)
	}
	return o, nil
}

// giveRunOptions keeps clean (never terminated) run options for reuse and
// destroys the rest.
func (r *Runtime) giveRunOptions(o *ort.RunOptions, clean bool) {
	if clean {
		select {
		case r.runOpts <- o:
			return
		default:
		}
	}
	o.Destroy()
}

// Close releases the session, after waiting for in-flight runs, and hands
// the C heap's free memory back to the system (see releaseMemory). It is
// idempotent; later Run calls return ErrClosed.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.sess.Destroy()
	s.sess = nil
	releaseMemory()
	if err != nil {
		return fmt.Errorf("engine: closing session: %w", err)
	}
	return nil
}
