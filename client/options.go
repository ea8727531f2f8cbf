package client

import (
	"bytes"
	"fmt"
	"math"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/tensor"
)

// UploadOption configures UploadModel.
type UploadOption interface{ applyUpload(*uploadConfig) }

// RunOption configures Run.
type RunOption interface{ applyRun(*runConfig) }

// CallOption configures both UploadModel and Run.
type CallOption interface {
	UploadOption
	RunOption
}

type uploadConfig struct {
	sign     bool
	chunk    int
	id, name string
	save     bool
	public   bool
	inputs   []TensorSpec
	outputs  []TensorSpec
	progress func(sent, total int64)
	nonce    []byte
}

type runConfig struct {
	sign   bool
	chunk  int
	byName bool
	nonce  []byte
}

type callOption struct {
	upload func(*uploadConfig)
	run    func(*runConfig)
}

func (o callOption) applyUpload(c *uploadConfig) {
	if o.upload != nil {
		o.upload(c)
	}
}

func (o callOption) applyRun(c *runConfig) {
	if o.run != nil {
		o.run(c)
	}
}

// Sign asks the server to sign its reply with the TEE's key. The client
// verifies the signature, and that the signed hashes and model id are those
// of the request, before returning; the result can then be saved as a
// proof file.
func Sign() CallOption {
	return callOption{
		upload: func(c *uploadConfig) { c.sign = true },
		run:    func(c *runConfig) { c.sign = true },
	}
}

// WithRequestNonce sends nonce (1 to 64 bytes, e.g. random bytes a
// verifier chose) with the request. The server records it in the receipt
// of a signed reply, and with Sign the client checks that it did: a proof
// of the reply then shows that the request was served after the nonce
// was made. It is not the nonce of the evidence (WithNonce).
func WithRequestNonce(nonce []byte) CallOption {
	n := bytes.Clone(nonce) // an empty nonce stays empty, and is refused
	return callOption{
		upload: func(c *uploadConfig) { c.nonce = n },
		run:    func(c *runConfig) { c.nonce = n },
	}
}

// WithChunkSize sets the size of the pieces a model or an input tensor is
// sent in (default DefaultChunkSize; values below 1 keep the default).
func WithChunkSize(n int) CallOption {
	return callOption{
		upload: func(c *uploadConfig) {
			if n > 0 {
				c.chunk = n
			}
		},
		run: func(c *runConfig) {
			if n > 0 {
				c.chunk = n
			}
		},
	}
}

type uploadOption func(*uploadConfig)

func (o uploadOption) applyUpload(c *uploadConfig) { o(c) }

type runOption func(*runConfig)

func (o runOption) applyRun(c *runConfig) { o(c) }

// WithModelID sets the id the model is stored under. Without it (and
// without WithModelName) the client picks a fresh UUIDv4.
func WithModelID(id string) UploadOption { return uploadOption(func(c *uploadConfig) { c.id = id }) }

// WithModelName sets the model's name; the server uses it as the id when
// no WithModelID is given.
func WithModelName(name string) UploadOption {
	return uploadOption(func(c *uploadConfig) { c.name = name })
}

// SaveModel asks the server to keep the model across restarts (sealed
// storage, where the server supports it).
func SaveModel() UploadOption { return uploadOption(func(c *uploadConfig) { c.save = true }) }

// Public lets any subject the server authenticates run the model (by
// default only its uploader may). Only the uploader may delete it.
func Public() UploadOption { return uploadOption(func(c *uploadConfig) { c.public = true }) }

// WithTensorInputs declares the model's inputs; the server checks them
// against the model and refuses the upload when they differ.
func WithTensorInputs(specs ...TensorSpec) UploadOption {
	return uploadOption(func(c *uploadConfig) { c.inputs = append([]TensorSpec(nil), specs...) })
}

// WithTensorOutputs declares the model's outputs; the server checks them
// against the model and refuses the upload when they differ.
func WithTensorOutputs(specs ...TensorSpec) UploadOption {
	return uploadOption(func(c *uploadConfig) { c.outputs = append([]TensorSpec(nil), specs...) })
}

// WithProgress calls f after each chunk sent, with the bytes sent so far and
// the model's size. f runs on the calling goroutine and must return quickly.
func WithProgress(f func(sent, total int64)) UploadOption {
	return uploadOption(func(c *uploadConfig) { c.progress = f })
}

// ByName sends inputs by name (TensorInfo.index_name = Tensor.Name) rather
// than by position alone. Every input tensor must then have a name.
func ByName() RunOption { return runOption(func(c *runConfig) { c.byName = true }) }

// TensorSpec describes a model input or output: name, element type and
// shape (-1 for a dynamic dimension).
type TensorSpec struct {
	Name  string
	DType tensor.DType
	Shape []int64
}

func (s TensorSpec) String() string {
	return fmt.Sprintf("%s: %s%v", s.Name, s.DType, s.Shape)
}

func specsToInfo(specs []TensorSpec) ([]*securedexchange.TensorInfo, error) {
	out := make([]*securedexchange.TensorInfo, len(specs))
	for i, s := range specs {
		if !s.DType.Valid() {
			return nil, fmt.Errorf("client: tensor spec %d (%q): invalid element type %d", i, s.Name, int32(s.DType))
		}
		dims, err := toDims(s.Shape, true)
		if err != nil {
			return nil, fmt.Errorf("client: tensor spec %d (%q): %w", i, s.Name, err)
		}
		out[i] = &securedexchange.TensorInfo{Dims: dims, DatumType: securedexchange.DatumTypeEnum(s.DType), Index: int32(i), IndexName: s.Name}
	}
	return out, nil
}

func infoToSpecs(infos []*securedexchange.TensorInfo) []TensorSpec {
	out := make([]TensorSpec, len(infos))
	for i, in := range infos {
		shape := make([]int64, len(in.GetDims()))
		for j, d := range in.GetDims() {
			shape[j] = int64(d)
		}
		out[i] = TensorSpec{Name: in.GetIndexName(), DType: tensor.DType(in.GetDatumType()), Shape: shape}
	}
	return out
}

// toDims converts a shape to the protocol's int32 dims.
func toDims(shape []int64, allowDynamic bool) ([]int32, error) {
	dims := make([]int32, len(shape))
	for i, d := range shape {
		switch {
		case d == -1 && allowDynamic:
		case d < 0:
			return nil, fmt.Errorf("dimension %d is %d; must be non-negative", i, d)
		case d > math.MaxInt32:
			return nil, fmt.Errorf("dimension %d is %d, over the protocol's int32 limit", i, d)
		}
		dims[i] = int32(d)
	}
	return dims, nil
}
