// Package onnxgen builds small, real ONNX models in Go, for tests and
// demos. A Graph collects typed inputs and outputs, constant initializers
// and operator nodes; Graph.Model encodes it as the bytes of an .onnx file.
// Weights come from a seeded generator, so every model is byte-for-byte
// reproducible.
package onnxgen

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/blindfold-ai/blindfold/internal/onnxpb"
	"github.com/blindfold-ai/blindfold/tensor"
)

//go:generate go run ./cmd/genmodels -out ../../testdata/models

const (
	// IRVersion is the ONNX IR version the builder writes.
	IRVersion = 8
	// Opset is the default ONNX operator set version (domain "ai.onnx").
	Opset = 17
	// Producer is written as the model's producer_name.
	Producer = "blindfold-onnxgen"
)

// ElemType returns the ONNX TensorProto.DataType value of d.
func ElemType(d tensor.DType) (int32, error) {
	m := map[tensor.DType]onnxpb.TensorProto_DataType{
		tensor.F32: onnxpb.TensorProto_FLOAT, tensor.F64: onnxpb.TensorProto_DOUBLE,
		tensor.I32: onnxpb.TensorProto_INT32, tensor.I64: onnxpb.TensorProto_INT64,
		tensor.U32: onnxpb.TensorProto_UINT32, tensor.U64: onnxpb.TensorProto_UINT64,
		tensor.U8: onnxpb.TensorProto_UINT8, tensor.U16: onnxpb.TensorProto_UINT16,
		tensor.I8: onnxpb.TensorProto_INT8, tensor.I16: onnxpb.TensorProto_INT16,
		tensor.Bool: onnxpb.TensorProto_BOOL, tensor.F16: onnxpb.TensorProto_FLOAT16,
		tensor.BF16: onnxpb.TensorProto_BFLOAT16,
	}
	t, ok := m[d]
	if !ok {
		return 0, fmt.Errorf("onnxgen: no ONNX element type for %s", d)
	}
	return int32(t), nil
}

// Dim is one dimension of a declared input or output shape: a fixed size
// (Fixed) or a named dynamic size (Sym).
type Dim struct {
	value int64
	param string
}

// Fixed returns a dimension of static size n.
func Fixed(n int64) Dim { return Dim{value: n} }

// Sym returns a dynamic dimension named name (an ONNX dim_param).
func Sym(name string) Dim { return Dim{param: name} }

// Dims returns fixed dimensions for each size in ns.
func Dims(ns ...int64) []Dim {
	out := make([]Dim, len(ns))
	for i, n := range ns {
		out[i] = Fixed(n)
	}
	return out
}

// Graph is an ONNX graph under construction. Its methods record the first
// error they meet; Model reports it.
type Graph struct {
	name    string
	opset   int64
	inputs  []*onnxpb.ValueInfoProto
	outputs []*onnxpb.ValueInfoProto
	inits   []*onnxpb.TensorProto
	nodes   []*onnxpb.NodeProto
	err     error
}

// NewGraph starts an empty graph named name using operator set Opset.
func NewGraph(name string) *Graph { return &Graph{name: name, opset: Opset} }

func (g *Graph) fail(err error) {
	if g.err == nil {
		g.err = err
	}
}

func (g *Graph) valueInfo(name string, d tensor.DType, dims []Dim) *onnxpb.ValueInfoProto {
	et, err := ElemType(d)
	if err != nil {
		g.fail(fmt.Errorf("value %q: %w", name, err))
	}
	shape := &onnxpb.TensorShapeProto{Dim: make([]*onnxpb.TensorShapeProto_Dimension, 0, len(dims))}
	for _, dim := range dims {
		pd := &onnxpb.TensorShapeProto_Dimension{}
		if dim.param != "" {
			pd.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: dim.param}
		} else {
			pd.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: dim.value}
		}
		shape.Dim = append(shape.Dim, pd)
	}
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(et), Shape: shape},
		}},
	}
}

// Input declares a graph input. Inputs keep their declaration order.
func (g *Graph) Input(name string, d tensor.DType, dims ...Dim) string {
	g.inputs = append(g.inputs, g.valueInfo(name, d, dims))
	return name
}

// InputUnranked declares a graph input without a shape (unknown rank).
func (g *Graph) InputUnranked(name string, d tensor.DType) string {
	vi := g.valueInfo(name, d, nil)
	vi.GetType().GetTensorType().Shape = nil
	g.inputs = append(g.inputs, vi)
	return name
}

// OutputUnranked declares a graph output without a shape (unknown rank).
func (g *Graph) OutputUnranked(name string, d tensor.DType) string {
	vi := g.valueInfo(name, d, nil)
	vi.GetType().GetTensorType().Shape = nil
	g.outputs = append(g.outputs, vi)
	return name
}

// Output declares a graph output. Outputs keep their declaration order.
func (g *Graph) Output(name string, d tensor.DType, dims ...Dim) string {
	g.outputs = append(g.outputs, g.valueInfo(name, d, dims))
	return name
}

// TensorProto converts t (named by t.Name) to an ONNX constant tensor with
// raw little-endian data.
func TensorProto(t tensor.Tensor) (*onnxpb.TensorProto, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	et, err := ElemType(t.DType)
	if err != nil {
		return nil, err
	}
	return &onnxpb.TensorProto{
		Name:     proto.String(t.Name),
		DataType: proto.Int32(et),
		Dims:     append([]int64{}, t.Shape...),
		RawData:  append([]byte{}, t.Data...),
	}, nil
}

// Initializer adds t as a named constant of the graph and returns its name.
func (g *Graph) Initializer(t tensor.Tensor) string {
	tp, err := TensorProto(t)
	if err != nil {
		g.fail(fmt.Errorf("initializer %q: %w", t.Name, err))
		return t.Name
	}
	g.inits = append(g.inits, tp)
	return t.Name
}

// Floats adds a float32 initializer of the given shape and returns its name.
func (g *Graph) Floats(name string, shape []int64, values []float32) string {
	t, err := tensor.New(name, shape, values)
	if err != nil {
		g.fail(fmt.Errorf("initializer %q: %w", name, err))
		return name
	}
	return g.Initializer(t)
}

// Int64s adds an int64 initializer of the given shape and returns its name.
func (g *Graph) Int64s(name string, shape []int64, values []int64) string {
	t, err := tensor.New(name, shape, values)
	if err != nil {
		g.fail(fmt.Errorf("initializer %q: %w", name, err))
		return name
	}
	return g.Initializer(t)
}

// Node appends an operator node (default domain) reading inputs and
// writing outputs. The node is named after its op type and position.
func (g *Graph) Node(op string, inputs, outputs []string, attrs ...*onnxpb.AttributeProto) {
	g.nodes = append(g.nodes, &onnxpb.NodeProto{
		Name:      proto.String(fmt.Sprintf("%s_%d", op, len(g.nodes))),
		OpType:    proto.String(op),
		Input:     inputs,
		Output:    outputs,
		Attribute: attrs,
	})
}

// AttrInt is an integer attribute.
func AttrInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

// AttrInts is an integer-list attribute.
func AttrInts(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

// AttrFloat is a float attribute.
func AttrFloat(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

// AttrTensor is a tensor attribute (as used by Constant's "value").
func AttrTensor(name string, t tensor.Tensor) (*onnxpb.AttributeProto, error) {
	tp, err := TensorProto(t)
	if err != nil {
		return nil, err
	}
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: tp}, nil
}

// Proto returns the graph wrapped in a ModelProto (IRVersion, the graph's
// opset), or the first error met while building.
func (g *Graph) Proto() (*onnxpb.ModelProto, error) {
	if g.err != nil {
		return nil, fmt.Errorf("onnxgen: graph %q: %w", g.name, g.err)
	}
	return &onnxpb.ModelProto{
		IrVersion:    proto.Int64(IRVersion),
		ProducerName: proto.String(Producer),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(g.opset)}},
		Graph: &onnxpb.GraphProto{
			Name:        proto.String(g.name),
			Node:        g.nodes,
			Initializer: g.inits,
			Input:       g.inputs,
			Output:      g.outputs,
		},
	}, nil
}

// Model encodes the graph as .onnx bytes. The encoding is deterministic.
func (g *Graph) Model() ([]byte, error) {
	m, err := g.Proto()
	if err != nil {
		return nil, err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("onnxgen: encoding graph %q: %w", g.name, err)
	}
	return b, nil
}

// Rand is a small deterministic pseudo-random generator (SplitMix64), used
// for model weights so that they never change between Go versions.
type Rand struct{ state uint64 }

// NewRand returns a generator seeded with seed.
func NewRand(seed uint64) *Rand { return &Rand{state: seed} }

// Uint64 returns the next 64 pseudo-random bits.
func (r *Rand) Uint64() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Weight returns a value in [-1, 1) that is a multiple of 1/64, so that it
// is exact in float32 (and in float16).
func (r *Rand) Weight() float32 {
	return float32(int64(r.Uint64()>>57)-64) / 64
}

// Weights returns n values from Weight, scaled by scale.
func (r *Rand) Weights(n int, scale float32) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = r.Weight() * scale
	}
	return out
}
