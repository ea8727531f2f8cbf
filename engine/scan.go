package engine

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// DefaultMaxModelNodes is the node limit of a Runtime whose
// Options.MaxModelNodes is 0. ONNX Runtime takes about 20µs of CPU and
// 2.5KB of memory per node to load even the simplest graph (a 100,000-node
// chain of Identity: 2.1s and about 250MB on a 2-core machine), so this
// bounds one load to a few seconds and a few hundred MB of graph
// structures; the largest ordinary models (transformers of a few billion
// parameters) have tens of thousands of nodes.
const DefaultMaxModelNodes = 100_000

// DefaultMaxModelInitializers is the initializer limit of a Runtime whose
// Options.MaxModelInitializers is 0. ONNX Runtime removes each unused
// initializer at a cost that grows with their number, so a model of many
// unused ones loads in time that grows with their square: 50,000 took 16s,
// 200,000 five and a half minutes. Real models have a few hundred to a few
// thousand.
const DefaultMaxModelInitializers = 10_000

// maxGraphDepth bounds how deeply graphs may nest (a Loop body inside an If
// branch inside ...). ONNX Runtime's protobuf parser stops at 100 nested
// messages, which is about 33 graphs.
const maxGraphDepth = 32

// Field numbers of onnx.proto that can lead to a tensor or a node.
const (
	modelTrainingInfoField = 20 // ModelProto.training_info
	modelFunctionsField    = 25 // ModelProto.functions

	trainingInitField      = 1 // TrainingInfoProto.initialization
	trainingAlgorithmField = 2 // TrainingInfoProto.algorithm

	functionNameField      = 1  // FunctionProto.name
	functionNodeField      = 7  // FunctionProto.node
	functionDomainField    = 10 // FunctionProto.domain
	functionAttributeField = 11 // FunctionProto.attribute_proto

	graphNodeField = 1 // GraphProto.node
	graphNameField = 2 // GraphProto.name

	nodeNameField      = 3 // NodeProto.name
	nodeOpTypeField    = 4 // NodeProto.op_type
	nodeAttributeField = 5 // NodeProto.attribute
	nodeDomainField    = 7 // NodeProto.domain

	attrNameField          = 1  // AttributeProto.name
	attrTensorField        = 5  // AttributeProto.t
	attrGraphField         = 6  // AttributeProto.g
	attrTensorsField       = 10 // AttributeProto.tensors
	attrGraphsField        = 11 // AttributeProto.graphs
	attrSparseTensorField  = 22 // AttributeProto.sparse_tensor
	attrSparseTensorsField = 23 // AttributeProto.sparse_tensors

	sparseIndicesField = 2 // SparseTensorProto.indices

	tensorExternalDataField = 13 // TensorProto.external_data
	tensorDataLocationField = 14 // TensorProto.data_location
)

// scanner walks every part of an ONNX model where a tensor or a node can
// sit, without decoding weights: graphs (the main one, subgraphs in node
// attributes at any depth, training graphs), local functions, node
// attributes and sparse tensors. It refuses tensors whose data lives
// outside the model and counts nodes. It reads the wire format itself, so
// that malformed input is an error, never a panic, and every occurrence of
// a field is seen (protobuf merges repeated occurrences of a message field;
// each part is checked).
type scanner struct {
	maxNodes int
	maxInits int
	// inits counts initializers and sparse initializers in every graph.
	inits int
	// nodes counts the nodes as ONNX Runtime will hold them: every node of
	// every graph and subgraph, each call of a local function as the nodes
	// of its body (with the calls in it expanded in turn), and the
	// functions' own definitions.
	nodes int
	// calls counts the local-function calls ONNX Runtime will inline.
	calls int
	// inFunction is set while a function definition is walked: its calls
	// are counted where it is called, not where it is defined.
	inFunction bool
	// functions holds the bodies of the model's local functions by domain
	// and name (a name can have several overloads).
	functions map[string][][]byte
	// expanded memoises the nodes and calls of one call of a function;
	// expanding marks the functions being expanded (a cycle is an error).
	expanded  map[string][2]int
	expanding map[string]bool
}

// maxFunctionCalls bounds how many local-function calls a model makes once
// calls inside functions are expanded. ONNX Runtime inlines every call
// when it loads a model, at a cost that grows faster than the calls: 4,000
// calls of a one-node function in a row load in 0.24s and 8,000 in 1.2s;
// a 2KB model of 16 functions that each call the next twice (32,767
// calls) took 30s, and each further level would double the calls. Real
// models exported with functions make hundreds of calls.
const maxFunctionCalls = 5_000

// functionKey names a local function as a node calls it.
func functionKey(domain, name string) string { return domain + "\x00" + name }

// scanModel checks the encoded ModelProto model. It returns an error
// wrapping ErrExternalData, ErrTooManyNodes, ErrTooManyInitializers or
// ErrInvalidModel.
func scanModel(model []byte, limits ModelLimits) error {
	s := &scanner{maxNodes: limits.Nodes, maxInits: limits.Initializers, functions: map[string][][]byte{}, expanded: map[string][2]int{}, expanding: map[string]bool{}}
	if err := s.fields(model, "model", func(num protowire.Number, b []byte) error {
		if num == modelFunctionsField {
			key := functionKey(lastString(b, functionDomainField), lastString(b, functionNameField))
			s.functions[key] = append(s.functions[key], b)
		}
		return nil
	}); err != nil {
		return err
	}
	training, functions := 0, 0
	return s.fields(model, "model", func(num protowire.Number, b []byte) error {
		switch num {
		case modelGraphField:
			return s.graph(b, "", 1)
		case modelTrainingInfoField:
			training++
			where := fmt.Sprintf("training_info[%d]", training-1)
			return s.fields(b, where, func(num protowire.Number, g []byte) error {
				switch num {
				case trainingInitField:
					return s.graph(g, where+".initialization", 1)
				case trainingAlgorithmField:
					return s.graph(g, where+".algorithm", 1)
				}
				return nil
			})
		case modelFunctionsField:
			functions++
			s.inFunction = true
			defer func() { s.inFunction = false }()
			return s.function(b, functions-1)
		}
		return nil
	})
}

// graph checks one GraphProto. within says where it sits ("" for the
// model's main graph).
func (s *scanner) graph(b []byte, within string, depth int) error {
	if depth > maxGraphDepth {
		return fmt.Errorf("%w: graphs nest more than %d deep", ErrInvalidModel, maxGraphDepth)
	}
	name := lastString(b, graphNameField)
	where := "graph " + quote(name)
	if within != "" {
		where += " (" + within + ")"
	}
	return s.fields(b, where, func(num protowire.Number, v []byte) error {
		switch num {
		case graphNodeField:
			return s.node(v, where, depth)
		case graphInitializerField:
			if err := s.initializer(); err != nil {
				return err
			}
			return s.tensor(v, "initializer", where)
		case graphSparseInitializerField:
			if err := s.initializer(); err != nil {
				return err
			}
			return s.sparse(v, "sparse initializer", where)
		}
		return nil
	})
}

// initializer counts one initializer against the limit.
func (s *scanner) initializer() error {
	s.inits++
	if s.inits > s.maxInits {
		return fmt.Errorf("%w: the model has more than %d initializers (counting subgraphs and sparse ones), the server's limit", ErrTooManyInitializers, s.maxInits)
	}
	return nil
}

// function checks the i-th local function: its nodes and its attributes'
// default values.
func (s *scanner) function(b []byte, i int) error {
	where := fmt.Sprintf("function %s (domain %s)", quote(lastString(b, functionNameField)), quote(lastString(b, functionDomainField)))
	if i >= 0 && lastString(b, functionNameField) == "" {
		where = fmt.Sprintf("function %d", i)
	}
	return s.fields(b, where, func(num protowire.Number, v []byte) error {
		switch num {
		case functionNodeField:
			return s.node(v, where, 1)
		case functionAttributeField:
			return s.attribute(v, "default of attribute", where, 1)
		}
		return nil
	})
}

// node counts one NodeProto and checks its attributes.
func (s *scanner) node(b []byte, where string, depth int) error {
	s.nodes++
	if !s.inFunction && len(s.functions) > 0 {
		nodes, calls, err := s.call(b)
		if err != nil {
			return err
		}
		s.nodes = satAdd(s.nodes, nodes)
		s.calls = satAdd(s.calls, calls)
	}
	if s.nodes > s.maxNodes {
		return fmt.Errorf("%w: the model has more than %d nodes (counting subgraphs, and every call of a local function as the nodes of its body), the server's limit", ErrTooManyNodes, s.maxNodes)
	}
	if s.calls > maxFunctionCalls {
		return fmt.Errorf("%w: the model calls its local functions more than %d times once the calls inside functions are counted, Blindfold's limit", ErrTooManyNodes, maxFunctionCalls)
	}
	what := "" // described only when needed: most nodes have no tensors or graphs
	return s.fields(b, where, func(num protowire.Number, v []byte) error {
		if num != nodeAttributeField {
			return nil
		}
		if what == "" {
			what = fmt.Sprintf("node %s (%s) in %s", quote(lastString(b, nodeNameField)), clip(lastString(b, nodeOpTypeField)), where)
		}
		return s.attribute(v, "attribute", what, depth)
	})
}

// call returns, for a node that calls a local function, the nodes and
// calls that ONNX Runtime's inlining of it adds (0, 0 for other nodes).
func (s *scanner) call(node []byte) (nodes, calls int, err error) {
	key := functionKey(lastString(node, nodeDomainField), lastString(node, nodeOpTypeField))
	if _, ok := s.functions[key]; !ok {
		return 0, 0, nil
	}
	nodes, calls, err = s.expand(key)
	return nodes, satAdd(calls, 1), err
}

// expand returns the nodes and calls of one call of the local function
// key, with the calls in its body (and in its nodes' subgraphs) expanded.
// Overloads count as the largest. Counts saturate past the limits.
func (s *scanner) expand(key string) (nodes, calls int, err error) {
	if c, ok := s.expanded[key]; ok {
		return c[0], c[1], nil
	}
	if s.expanding[key] {
		return 0, 0, fmt.Errorf("%w: local function %s calls itself", ErrInvalidModel, quote(strings.ReplaceAll(key, "\x00", ".")))
	}
	s.expanding[key] = true
	defer delete(s.expanding, key)
	for _, body := range s.functions[key] {
		n, c, err := s.countNodes(body, functionNodeField, 1)
		if err != nil {
			return 0, 0, err
		}
		nodes, calls = max(nodes, n), max(calls, c)
	}
	s.expanded[key] = [2]int{nodes, calls}
	return nodes, calls, nil
}

// countNodes counts the nodes (field nodeField of message b: a graph's or
// a function's) with their subgraphs and the expansion of their calls.
func (s *scanner) countNodes(b []byte, nodeField protowire.Number, depth int) (nodes, calls int, err error) {
	if depth > maxGraphDepth {
		return 0, 0, fmt.Errorf("%w: graphs nest more than %d deep", ErrInvalidModel, maxGraphDepth)
	}
	err = s.fields(b, "function body", func(num protowire.Number, node []byte) error {
		if num != nodeField {
			return nil
		}
		n, c, err := s.call(node)
		if err != nil {
			return err
		}
		nodes, calls = satAdd(nodes, satAdd(n, 1)), satAdd(calls, c)
		return s.fields(node, "function body", func(num protowire.Number, attr []byte) error {
			if num != nodeAttributeField {
				return nil
			}
			return s.fields(attr, "function body", func(num protowire.Number, g []byte) error {
				if num != attrGraphField && num != attrGraphsField {
					return nil
				}
				n, c, err := s.countNodes(g, graphNodeField, depth+1)
				nodes, calls = satAdd(nodes, n), satAdd(calls, c)
				return err
			})
		})
	})
	return nodes, calls, err
}

// satAdd adds two counts, saturating well above any limit.
func satAdd(a, b int) int {
	const ceiling = 1 << 40
	if a > ceiling-b {
		return ceiling
	}
	return a + b
}

// attribute checks the tensors and graphs of one AttributeProto.
func (s *scanner) attribute(b []byte, kind, where string, depth int) error {
	what := kind + " " + quote(lastString(b, attrNameField)) + " of " + where
	return s.fields(b, what, func(num protowire.Number, v []byte) error {
		switch num {
		case attrTensorField, attrTensorsField:
			return s.tensor(v, "tensor in", what)
		case attrSparseTensorField, attrSparseTensorsField:
			return s.sparse(v, "sparse tensor in", what)
		case attrGraphField, attrGraphsField:
			return s.graph(v, what, depth+1)
		}
		return nil
	})
}

// sparse checks the values and indices of a SparseTensorProto.
func (s *scanner) sparse(b []byte, kind, where string) error {
	return s.fields(b, kind+" in "+where, func(num protowire.Number, v []byte) error {
		switch num {
		case sparseValuesField:
			return s.tensor(v, kind+" (values)", where)
		case sparseIndicesField:
			return s.tensor(v, kind+" (indices)", where)
		}
		return nil
	})
}

// tensor refuses a TensorProto whose data is stored outside the model: a
// data_location other than DEFAULT, or any external_data entry (whatever
// their wire encoding, so that no parser can read them differently).
func (s *scanner) tensor(b []byte, kind, where string) error {
	external := false
	ok := eachRaw(b, func(num protowire.Number, typ protowire.Type, v uint64) {
		switch num {
		case tensorExternalDataField:
			external = true
		case tensorDataLocationField:
			if typ != protowire.VarintType || v != 0 {
				external = true
			}
		}
	})
	if !ok {
		return fmt.Errorf("%w: %s in %s: malformed protobuf encoding", ErrInvalidModel, kind, where)
	}
	if external {
		return fmt.Errorf("%w: %s %s in %s: tensor data is stored outside the model (external data), which Blindfold refuses; save the model with its weights inside it",
			ErrExternalData, kind, quote(lastString(b, tensorNameField)), where)
	}
	return nil
}

// fields calls f with each length-delimited field of message b; other wire
// types are skipped (a parser treats a message field sent with another
// wire type as an unknown field). where names b in the error for a
// malformed encoding.
func (s *scanner) fields(b []byte, where string, f func(num protowire.Number, v []byte) error) error {
	var err error
	ok := eachField(b, func(num protowire.Number, v []byte) bool {
		err = f(num, v)
		return err == nil
	})
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s: malformed protobuf encoding", ErrInvalidModel, where)
	}
	return nil
}

// eachRaw calls f with the number, wire type and, for varints, the value of
// every field of message b. It reports false on malformed input.
func eachRaw(b []byte, f func(num protowire.Number, typ protowire.Type, v uint64)) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		var v uint64
		if typ == protowire.VarintType {
			v, n = protowire.ConsumeVarint(b)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return false
		}
		b = b[n:]
		f(num, typ, v)
	}
	return true
}

// lastString returns the last value of string field num in message b (the
// one a protobuf parser keeps), or "" if there is none or b is malformed.
func lastString(b []byte, num protowire.Number) string {
	var out string
	eachField(b, func(n protowire.Number, v []byte) bool {
		if n == num {
			out = string(v)
		}
		return true
	})
	return out
}

// maxNameInError bounds a name quoted in an error message.
const maxNameInError = 80

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) <= maxNameInError {
		return s
	}
	return strings.ToValidUTF8(s[:maxNameInError], "") + "..."
}

// quote returns s, shortened, in double quotes.
func quote(s string) string { return fmt.Sprintf("%q", clip(s)) }
