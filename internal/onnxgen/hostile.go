package onnxgen

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/blindfold-ai/blindfold/internal/onnxpb"
	"github.com/blindfold-ai/blindfold/tensor"
)

// Place is where ExternalData puts its external-data tensor.
type Place string

// The places a model can hold a tensor.
const (
	// InInitializer: an initializer of the main graph.
	InInitializer Place = "initializer"
	// InConstant: the value attribute of a Constant node.
	InConstant Place = "constant"
	// InSubgraph: an initializer of an If node's then_branch.
	InSubgraph Place = "subgraph"
	// InFunction: a Constant node inside a model-local function.
	InFunction Place = "function"
	// InFunctionDefault: the default value of a local function's
	// attribute.
	InFunctionDefault Place = "function_default"
	// InSparseInitializer: the values of a sparse initializer.
	InSparseInitializer Place = "sparse_initializer"
	// InSparseIndices: the indices of a sparse initializer.
	InSparseIndices Place = "sparse_indices"
	// InSparseConstant: the sparse_value attribute of a Constant node.
	InSparseConstant Place = "sparse_constant"
	// InTrainingInfo: an initializer of a training_info initialization
	// graph.
	InTrainingInfo Place = "training_info"
)

// Places lists every Place.
func Places() []Place {
	return []Place{InInitializer, InConstant, InSubgraph, InFunction, InFunctionDefault,
		InSparseInitializer, InSparseIndices, InSparseConstant, InTrainingInfo}
}

// externalTensor is a uint8[n] tensor whose bytes ONNX Runtime would read
// from the file location, relative to the model's folder.
func externalTensor(name, location string, n int64) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{
		Name:         proto.String(name),
		DataType:     proto.Int32(int32(onnxpb.TensorProto_UINT8)),
		Dims:         []int64{n},
		DataLocation: onnxpb.TensorProto_EXTERNAL.Enum(),
		ExternalData: []*onnxpb.StringStringEntryProto{
			{Key: proto.String("location"), Value: proto.String(location)},
			{Key: proto.String("offset"), Value: proto.String("0")},
			{Key: proto.String("length"), Value: proto.String(fmt.Sprint(n))},
		},
	}
}

func node(name, op string, inputs, outputs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{Name: proto.String(name), OpType: proto.String(op), Input: inputs, Output: outputs, Attribute: attrs}
}

// ExternalData returns a hostile model: a tensor "W" (uint8[n]) at place
// keeps its data in the file location, and the model's output y is
// Add(W, x) for its input x (uint8[n]), so that a runtime that read the
// file would hand its bytes back for x = 0. (For InSparseIndices the
// indices are external and W's values are zero; for InTrainingInfo y is x.)
// The encoding is deterministic.
func ExternalData(place Place, location string, n int64) ([]byte, error) {
	g := NewGraph("main")
	x := g.Input("x", tensor.U8, Fixed(n))
	g.Output("y", tensor.U8, Fixed(n))
	m, err := g.Proto()
	if err != nil {
		return nil, err
	}
	main := m.Graph
	ext := externalTensor("W", location, n)
	add := node("add", "Add", []string{"W", x}, []string{"y"})
	tensorAttr := func(name string, t *onnxpb.TensorProto) *onnxpb.AttributeProto {
		return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: t}
	}
	indices := make([]byte, 8*n) // int64 0..n-1, little-endian
	for i := int64(0); i < n; i++ {
		for b := 0; b < 8; b++ {
			indices[8*i+int64(b)] = byte(i >> (8 * b))
		}
	}
	sparse := func(values, idx *onnxpb.TensorProto) *onnxpb.SparseTensorProto {
		if idx == nil {
			idx = &onnxpb.TensorProto{Name: proto.String("W_indices"), DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)), Dims: []int64{n}, RawData: indices}
		}
		if values == nil {
			values = &onnxpb.TensorProto{Name: proto.String("W"), DataType: proto.Int32(int32(onnxpb.TensorProto_UINT8)), Dims: []int64{n}, RawData: make([]byte, n)}
		}
		return &onnxpb.SparseTensorProto{Values: values, Indices: idx, Dims: []int64{n}}
	}
	switch place {
	case InInitializer:
		main.Initializer = append(main.Initializer, ext)
		main.Node = append(main.Node, add)
	case InConstant:
		main.Node = append(main.Node, node("leak", "Constant", nil, []string{"W"}, tensorAttr("value", ext)), add)
	case InSubgraph:
		branch := func(name string, init *onnxpb.TensorProto, from string) *onnxpb.AttributeProto {
			out := name + "_out"
			sub := &onnxpb.GraphProto{
				Name:   proto.String(name),
				Node:   []*onnxpb.NodeProto{node(name+"_id", "Identity", []string{from}, []string{out})},
				Output: []*onnxpb.ValueInfoProto{g.valueInfo(out, tensor.U8, Dims(n))},
			}
			if init != nil {
				sub.Initializer = []*onnxpb.TensorProto{init}
			}
			return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: sub}
		}
		cond := &onnxpb.TensorProto{Name: proto.String("cond"), DataType: proto.Int32(int32(onnxpb.TensorProto_BOOL)), RawData: []byte{1}}
		main.Node = append(main.Node,
			node("cond", "Constant", nil, []string{"cond"}, tensorAttr("value", cond)),
			node("if", "If", []string{"cond"}, []string{"W"}, branch("then_branch", ext, "W"), branch("else_branch", nil, x)),
			add)
	case InFunction, InFunctionDefault:
		const domain = "blindfold.test"
		fn := &onnxpb.FunctionProto{
			Name:        proto.String("Leak"),
			Domain:      proto.String(domain),
			Output:      []string{"out"},
			OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(Opset)}},
		}
		if place == InFunction {
			fn.Node = []*onnxpb.NodeProto{node("leak", "Constant", nil, []string{"out"}, tensorAttr("value", ext))}
		} else {
			fn.Attribute = nil
			fn.AttributeProto = []*onnxpb.AttributeProto{tensorAttr("secret", ext)}
			fn.Node = []*onnxpb.NodeProto{node("leak", "Constant", nil, []string{"out"}, &onnxpb.AttributeProto{
				Name: proto.String("value"), Type: onnxpb.AttributeProto_TENSOR.Enum(), RefAttrName: proto.String("secret"),
			})}
		}
		m.Functions = []*onnxpb.FunctionProto{fn}
		m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String(domain), Version: proto.Int64(1)})
		call := node("call", "Leak", nil, []string{"W"})
		call.Domain = proto.String(domain)
		main.Node = append(main.Node, call, add)
	case InSparseInitializer:
		main.SparseInitializer = []*onnxpb.SparseTensorProto{sparse(ext, nil)}
		main.Node = append(main.Node, add)
	case InSparseIndices:
		idx := externalTensor("W_indices", location, n)
		idx.DataType = proto.Int32(int32(onnxpb.TensorProto_INT64))
		main.SparseInitializer = []*onnxpb.SparseTensorProto{sparse(nil, idx)}
		main.Node = append(main.Node, add)
	case InSparseConstant:
		main.Node = append(main.Node, node("leak", "Constant", nil, []string{"W"}, &onnxpb.AttributeProto{
			Name: proto.String("sparse_value"), Type: onnxpb.AttributeProto_SPARSE_TENSOR.Enum(), SparseTensor: sparse(ext, nil),
		}), add)
	case InTrainingInfo:
		main.Node = append(main.Node, node("id", "Identity", []string{x}, []string{"y"}))
		m.TrainingInfo = []*onnxpb.TrainingInfoProto{{Initialization: &onnxpb.GraphProto{
			Name: proto.String("init"), Initializer: []*onnxpb.TensorProto{ext},
		}}}
	default:
		return nil, fmt.Errorf("onnxgen: unknown place %q", place)
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

// IdentityChain returns a model of n Identity nodes in a chain from input
// x (float32[1]) to output y: the cheapest model per node to encode, and
// one that costs ONNX Runtime time and memory for every node.
func IdentityChain(n int) ([]byte, error) {
	g := NewGraph("chain")
	prev := g.Input("x", tensor.F32, Fixed(1))
	g.Output("y", tensor.F32, Fixed(1))
	m, err := g.Proto()
	if err != nil {
		return nil, err
	}
	nodes := make([]*onnxpb.NodeProto, n)
	for i := range nodes {
		out := fmt.Sprintf("v%d", i)
		if i == n-1 {
			out = "y"
		}
		nodes[i] = &onnxpb.NodeProto{OpType: proto.String("Identity"), Input: []string{prev}, Output: []string{out}}
		prev = out
	}
	m.Graph.Node = nodes
	return proto.Marshal(m)
}

// FunctionFanOut returns a model whose graph is one call of a local
// function f0, where each function f<i> calls f<i+1> twice and the last,
// f<depth>, is one Identity: 2*depth+2 nodes as written, 2^depth Identity
// nodes once ONNX Runtime inlines the functions. Input x and output y are
// float32[1]; y = x.
func FunctionFanOut(depth int) ([]byte, error) {
	const domain = "blindfold.fanout"
	g := NewGraph("fanout")
	x := g.Input("x", tensor.F32, Fixed(1))
	g.Output("y", tensor.F32, Fixed(1))
	m, err := g.Proto()
	if err != nil {
		return nil, err
	}
	call := func(fn, in, out string) *onnxpb.NodeProto {
		n := node("", fn, []string{in}, []string{out})
		n.Name = nil
		n.Domain = proto.String(domain)
		return n
	}
	opsets := []*onnxpb.OperatorSetIdProto{
		{Domain: proto.String(""), Version: proto.Int64(Opset)},
		{Domain: proto.String(domain), Version: proto.Int64(1)},
	}
	for i := 0; i <= depth; i++ {
		fn := &onnxpb.FunctionProto{
			Name: proto.String(fmt.Sprint("f", i)), Domain: proto.String(domain),
			Input: []string{"a"}, Output: []string{"b"}, OpsetImport: opsets,
		}
		if i == depth {
			fn.Node = []*onnxpb.NodeProto{node("", "Identity", []string{"a"}, []string{"b"})}
		} else {
			next := fmt.Sprint("f", i+1)
			fn.Node = []*onnxpb.NodeProto{call(next, "a", "t"), call(next, "t", "b")}
		}
		m.Functions = append(m.Functions, fn)
	}
	m.OpsetImport = opsets
	m.Graph.Node = []*onnxpb.NodeProto{call("f0", x, "y")}
	return proto.Marshal(m)
}

// FunctionCalls returns a model whose graph is a chain of n calls of one
// local function holding a single Identity node: y = x, float32[1].
func FunctionCalls(n int) ([]byte, error) {
	const domain = "blindfold.calls"
	g := NewGraph("calls")
	prev := g.Input("x", tensor.F32, Fixed(1))
	g.Output("y", tensor.F32, Fixed(1))
	m, err := g.Proto()
	if err != nil {
		return nil, err
	}
	opsets := []*onnxpb.OperatorSetIdProto{
		{Domain: proto.String(""), Version: proto.Int64(Opset)},
		{Domain: proto.String(domain), Version: proto.Int64(1)},
	}
	m.OpsetImport = opsets
	m.Functions = []*onnxpb.FunctionProto{{
		Name: proto.String("f"), Domain: proto.String(domain), Input: []string{"a"}, Output: []string{"b"}, OpsetImport: opsets,
		Node: []*onnxpb.NodeProto{node("", "Identity", []string{"a"}, []string{"b"})},
	}}
	for i := 0; i < n; i++ {
		out := fmt.Sprint("v", i)
		if i == n-1 {
			out = "y"
		}
		c := &onnxpb.NodeProto{OpType: proto.String("f"), Domain: proto.String(domain), Input: []string{prev}, Output: []string{out}}
		m.Graph.Node = append(m.Graph.Node, c)
		prev = out
	}
	return proto.Marshal(m)
}
