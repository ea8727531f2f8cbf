package server

import (
	"fmt"
	"hash"
	"strings"

	"google.golang.org/grpc/codes"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/engine"
	"github.com/blindfold-ai/blindfold/internal/bufpool"
	"github.com/blindfold-ai/blindfold/tensor"
)

// assembler joins the input tensors of one RunModel stream: chunks with the
// same index, or the same index_name, are concatenated in the order they
// arrive. It counts every byte against a limit as it arrives. Before it
// allocates a tensor it checks the declared type, rank and static
// dimensions against the model's input and takes the tensor's size from
// the request's limit and from the server-wide budget of input bytes in
// flight; then it allocates the tensor once (or keeps a tensor that arrives
// whole in one chunk without copying). It feeds the input hash when a
// signature is asked for.
type assembler struct {
	specs   []engine.TensorSpec
	limit   int64
	total   int64 // bytes received
	parts   []*part
	hash    hash.Hash   // nil when the reply is not signed
	budget  *byteBudget // server-wide input bytes in flight
	taken   int64       // bytes taken from budget
	empties int         // chunks without bytes
}

type part struct {
	dtype tensor.DType
	shape []int64
	want  int64
	data  []byte
	whole bool // data is the received buffer of a single chunk
}

func newAssembler(specs []engine.TensorSpec, limit int64, budget *byteBudget, h hash.Hash) *assembler {
	return &assembler{specs: specs, limit: limit, parts: make([]*part, len(specs)), hash: h, budget: budget}
}

// empty counts a chunk that carries no bytes.
func (a *assembler) empty() error {
	if a.empties++; a.empties > maxEmptyChunks {
		return errorf(codes.InvalidArgument, "more than %d chunks without input bytes; every chunk must carry some", maxEmptyChunks)
	}
	return nil
}

// checkDeclared compares an input's declared shape with the model's,
// before anything is allocated for it.
func checkDeclared(spec engine.TensorSpec, dtype tensor.DType, shape []int64) error {
	if spec.Shape == nil {
		return nil
	}
	if len(shape) != len(spec.Shape) {
		return errorf(codes.InvalidArgument, "input %q: the request declares %s%v, rank %d; the model expects rank %d (%s)", spec.Name, dtype, shape, len(shape), len(spec.Shape), describeSpec(spec))
	}
	for i, d := range shape {
		if d < 0 {
			return errorf(codes.InvalidArgument, "input %q: dimension %d is negative (%d)", spec.Name, i, d)
		}
		if spec.Shape[i] >= 0 && d != spec.Shape[i] {
			return errorf(codes.InvalidArgument, "input %q: the request declares dimension %d = %d; the model expects %d (%s)", spec.Name, i, d, spec.Shape[i], describeSpec(spec))
		}
	}
	return nil
}

// position finds the model input a chunk belongs to.
func (a *assembler) position(info *securedexchange.TensorInfo) (int, error) {
	if info.GetIndexName() != "" {
		for i, s := range a.specs {
			if s.Name == info.IndexName {
				return i, nil
			}
		}
		return 0, errorf(codes.InvalidArgument, "unknown input name %q; the model's inputs are %s", info.IndexName, describeSpecs(a.specs))
	}
	idx := info.GetIndex()
	if idx < 0 || int(idx) >= len(a.specs) {
		return 0, errorf(codes.InvalidArgument, "input index %d is out of range: the model has %d input(s): %s", idx, len(a.specs), describeSpecs(a.specs))
	}
	return int(idx), nil
}

// add takes one TensorData chunk.
func (a *assembler) add(td *securedexchange.TensorData) error {
	info := td.GetInfo()
	if info == nil {
		return errorf(codes.InvalidArgument, "a tensor chunk has no info: every TensorData must say which input it belongs to (index or index_name)")
	}
	pos, err := a.position(info)
	if err != nil {
		return err
	}
	spec := a.specs[pos]
	data := td.GetBytesData()
	if len(data) == 0 && a.parts[pos] != nil {
		if err := a.empty(); err != nil {
			return err
		}
	}
	p := a.parts[pos]
	if p == nil {
		shape := make([]int64, len(info.GetDims()))
		for i, d := range info.GetDims() {
			shape[i] = int64(d)
		}
		return a.addPart(pos, tensor.DType(info.GetDatumType()), shape, data)
	}
	a.total += int64(len(data))
	if a.total > a.limit {
		return errorf(codes.ResourceExhausted, "inputs exceed the server's limit of %d bytes (max_input_bytes)", a.limit)
	}
	if len(info.GetDims()) > 0 || info.GetDatumType() != 0 {
		if tensor.DType(info.GetDatumType()) != p.dtype || !sameDims(info.GetDims(), p.shape) {
			return errorf(codes.InvalidArgument, "input %q: a later chunk declares %s%v, the first declared %s%v", spec.Name, tensor.DType(info.GetDatumType()), info.GetDims(), p.dtype, p.shape)
		}
	}
	if len(data) > 0 {
		if p.whole || int64(len(p.data)+len(data)) > p.want {
			return errorf(codes.InvalidArgument, "input %q: more bytes than %s%v holds (%d)", spec.Name, p.dtype, p.shape, p.want)
		}
		p.data = append(p.data, data...)
	}
	if a.hash != nil {
		a.hash.Write(data)
	}
	clear(data) // copied: the received message's buffer keeps no plaintext
	return nil
}

// addPart takes the first chunk of input pos, declared as dtype and
// shape: it checks them against the model's input and the limits before
// it allocates the tensor once (or keeps data as is when it is the whole
// tensor).
func (a *assembler) addPart(pos int, dtype tensor.DType, shape []int64, data []byte) error {
	spec := a.specs[pos]
	a.total += int64(len(data))
	if a.total > a.limit {
		return errorf(codes.ResourceExhausted, "inputs exceed the server's limit of %d bytes (max_input_bytes)", a.limit)
	}
	if !dtype.Valid() {
		return errorf(codes.InvalidArgument, "input %q: unknown datum_type %d", spec.Name, int(dtype))
	}
	if dtype != spec.DType {
		return errorf(codes.InvalidArgument, "input %q: expected %s, got %s", spec.Name, spec.DType, dtype)
	}
	if err := checkDeclared(spec, dtype, shape); err != nil {
		return err
	}
	want, err := tensor.ByteSize(dtype, shape)
	if err != nil {
		return errorf(codes.InvalidArgument, "input %q: bad dims %v: %v", spec.Name, shape, err)
	}
	if want > a.limit-a.declared() {
		return errorf(codes.ResourceExhausted, "input %q: %s%v is %d bytes; with the other inputs that is over the server's limit of %d bytes per request (max_input_bytes)", spec.Name, dtype, shape, want, a.limit)
	}
	// The buffer is taken from bufpool, rounded up to its size class:
	// the budget counts what is really held.
	held := int64(bufpool.Size(int(want)))
	if !a.budget.take(held) {
		return errorf(codes.ResourceExhausted, "the server holds as many input bytes as it allows at once (max_inflight_input_bytes); retry later")
	}
	a.taken += held
	p := &part{dtype: dtype, shape: shape, want: want}
	a.parts[pos] = p
	if int64(len(data)) == want {
		p.data, p.whole = data, true // arrived whole: use the received buffer as is
		if a.hash != nil {
			a.hash.Write(data)
		}
		return nil
	}
	if int64(len(data)) > want {
		return errorf(codes.InvalidArgument, "input %q: more bytes than %s%v holds (%d)", spec.Name, p.dtype, p.shape, p.want)
	}
	p.data = bufpool.Get(int(want))[:0]
	p.data = append(p.data, data...)
	if a.hash != nil {
		a.hash.Write(data)
	}
	clear(data) // copied: the received message's buffer keeps no plaintext
	return nil
}

func sameDims(dims []int32, shape []int64) bool {
	if len(dims) != len(shape) {
		return false
	}
	for i := range dims {
		if int64(dims[i]) != shape[i] {
			return false
		}
	}
	return true
}

// finish returns the inputs in the model's order, or says which is missing
// or incomplete.
func (a *assembler) finish() ([]tensor.Tensor, error) {
	out := make([]tensor.Tensor, len(a.specs))
	for i, spec := range a.specs {
		p := a.parts[i]
		if p == nil {
			return nil, errorf(codes.InvalidArgument, "missing input %q (%s); the model's inputs are %s", spec.Name, describeSpec(spec), describeSpecs(a.specs))
		}
		if int64(len(p.data)) != p.want {
			return nil, errorf(codes.InvalidArgument, "the stream ended mid-tensor: input %q has %d of the %d bytes that %s%v needs", spec.Name, len(p.data), p.want, p.dtype, p.shape)
		}
		out[i] = tensor.Tensor{Name: spec.Name, DType: p.dtype, Shape: p.shape, Data: p.data}
	}
	return out, nil
}

// declared returns the bytes of the inputs declared so far.
func (a *assembler) declared() int64 {
	var n int64
	for _, p := range a.parts {
		if p != nil {
			n += p.want
		}
	}
	return n
}

// release zeroes the input bytes received (only those: memory never
// written is never touched) and gives their room back to the server-wide
// budget. It may be called more than once.
func (a *assembler) release() {
	for i, p := range a.parts {
		if p != nil {
			if p.whole {
				clear(p.data) // the received message's buffer
			} else {
				bufpool.Put(p.data)
			}
			a.parts[i] = nil
		}
	}
	a.budget.give(a.taken)
	a.taken = 0
}

func describeSpec(s engine.TensorSpec) string {
	dims := make([]string, len(s.Shape))
	for i, d := range s.Shape {
		if d < 0 {
			dims[i] = "?"
		} else {
			dims[i] = fmt.Sprint(d)
		}
	}
	return fmt.Sprintf("%s[%s]", s.DType, strings.Join(dims, ","))
}

func describeSpecs(specs []engine.TensorSpec) string {
	parts := make([]string, len(specs))
	for i, s := range specs {
		parts[i] = fmt.Sprintf("%d:%s %s", i, s.Name, describeSpec(s))
	}
	return strings.Join(parts, ", ")
}
