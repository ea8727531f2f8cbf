package bench

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/blindfold-ai/blindfold/internal/onnxgen"
	"github.com/blindfold-ai/blindfold/tensor"
)

// EncoderConfig is the shape of a BERT-style transformer encoder.
type EncoderConfig struct {
	Layers int // encoder blocks
	Hidden int // model width
	Heads  int // attention heads (Hidden must be a multiple)
	FF     int // feed-forward width
	Vocab  int // vocabulary size (rows of the token embedding)
	MaxPos int // rows of the position embedding (at least Seq)
	Seq    int // sequence length (fixed in the model)
	Seed   uint64
}

// DistilBERT is DistilBERT-base's shape at sequence length 128, batch 1:
// about 66 million float32 weights (265 MB).
var DistilBERT = EncoderConfig{Layers: 6, Hidden: 768, Heads: 12, FF: 3072, Vocab: 30522, MaxPos: 512, Seq: 128, Seed: 7}

// Params returns the number of weights of the encoder.
func (c EncoderConfig) Params() int64 {
	h, f := int64(c.Hidden), int64(c.FF)
	emb := int64(c.Vocab)*h + int64(c.MaxPos)*h + 2*h
	layer := 4*h*h + 4*h + 2*h*f + f + h + 4*h
	return emb + int64(c.Layers)*layer
}

func (c EncoderConfig) validate() error {
	switch {
	case c.Layers < 1 || c.Hidden < 1 || c.Heads < 1 || c.FF < 1 || c.Vocab < 1 || c.Seq < 1:
		return fmt.Errorf("bench: encoder config %+v: every size must be positive", c)
	case c.Hidden%c.Heads != 0:
		return fmt.Errorf("bench: encoder config: hidden size %d is not a multiple of %d heads", c.Hidden, c.Heads)
	case c.MaxPos < c.Seq:
		return fmt.Errorf("bench: encoder config: %d positions cannot cover sequence length %d", c.MaxPos, c.Seq)
	}
	return nil
}

// weights appends to g a float32 initializer of the given shape, filled
// from r with values in [-scale, scale), written straight to raw bytes.
func weights(g *onnxgen.Graph, r *onnxgen.Rand, name string, scale float32, shape ...int64) string {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	b := make([]byte, 4*n)
	for i := int64(0); i < n; i++ {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(r.Weight()*scale))
	}
	return g.Initializer(tensor.Tensor{Name: name, DType: tensor.F32, Shape: shape, Data: b})
}

// constant appends a float32 initializer holding v in every element.
func constant(g *onnxgen.Graph, name string, v float32, shape ...int64) string {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = v
	}
	return g.Floats(name, shape, vals)
}

// Encoder returns an ONNX model (opset 17) of a BERT-style encoder with the
// shape c and deterministic random weights: inputs "input_ids" and
// "attention_mask" (int64 [1,Seq]), output "last_hidden_state" (float32
// [1,Seq,Hidden]). Token and position embeddings (Gather) are added and
// normalised (LayerNormalization); each block has multi-head
// self-attention (MatMul+Add for Q, K and V, Reshape/Transpose to heads,
// scores divided by sqrt(head size), the mask as an additive bias,
// Softmax, back to [1,Seq,Hidden], output projection), a residual Add and
// LayerNormalization, then a feed-forward layer with the erf form of GELU,
// a residual Add and LayerNormalization. Weights are small enough that
// activations stay finite.
func Encoder(c EncoderConfig) ([]byte, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	h, s, f, nh := int64(c.Hidden), int64(c.Seq), int64(c.FF), int64(c.Heads)
	hd := h / nh
	r := onnxgen.NewRand(c.Seed)
	g := onnxgen.NewGraph(fmt.Sprintf("encoder_L%d_H%d", c.Layers, c.Hidden))
	g.Input("input_ids", tensor.I64, onnxgen.Dims(1, s)...)
	g.Input("attention_mask", tensor.I64, onnxgen.Dims(1, s)...)
	g.Output("last_hidden_state", tensor.F32, onnxgen.Dims(1, s, h)...)

	// Shapes and constants shared by every layer.
	g.Int64s("shape_heads", []int64{4}, []int64{1, s, nh, hd})
	g.Int64s("shape_model", []int64{3}, []int64{1, s, h})
	g.Int64s("shape_mask", []int64{4}, []int64{1, 1, 1, s})
	pos := make([]int64, s)
	for i := range pos {
		pos[i] = int64(i)
	}
	g.Int64s("position_ids", []int64{1, s}, pos)
	g.Floats("one", []int64{}, []float32{1})
	g.Floats("half", []int64{}, []float32{0.5})
	g.Floats("sqrt2", []int64{}, []float32{float32(math.Sqrt2)})
	g.Floats("scale", []int64{}, []float32{float32(math.Sqrt(float64(hd)))})
	g.Floats("mask_neg", []int64{}, []float32{-10000})

	ln := func(x, prefix, out string) {
		gamma := constant(g, prefix+"_gamma", 1, h)
		beta := constant(g, prefix+"_beta", 0, h)
		g.Node("LayerNormalization", []string{x, gamma, beta}, []string{out},
			onnxgen.AttrInt("axis", -1), onnxgen.AttrFloat("epsilon", 1e-12))
	}
	linear := func(x, prefix string, in, out int64, dst string) {
		w := weights(g, r, prefix+"_w", float32(1/math.Sqrt(float64(in))), in, out)
		b := weights(g, r, prefix+"_b", 0.02, out)
		g.Node("MatMul", []string{x, w}, []string{prefix + "_mm"})
		g.Node("Add", []string{prefix + "_mm", b}, []string{dst})
	}

	// Embeddings.
	weights(g, r, "word_embeddings", 0.1, int64(c.Vocab), h)
	weights(g, r, "position_embeddings", 0.1, int64(c.MaxPos), h)
	g.Node("Gather", []string{"word_embeddings", "input_ids"}, []string{"tok_emb"})
	g.Node("Gather", []string{"position_embeddings", "position_ids"}, []string{"pos_emb"})
	g.Node("Add", []string{"tok_emb", "pos_emb"}, []string{"emb_sum"})
	ln("emb_sum", "emb_ln", "x0")

	// Additive attention bias: 0 where the mask is 1, -10000 where it is 0.
	g.Node("Cast", []string{"attention_mask"}, []string{"mask_f"}, onnxgen.AttrInt("to", 1)) // FLOAT
	g.Node("Sub", []string{"one", "mask_f"}, []string{"mask_inv"})
	g.Node("Mul", []string{"mask_inv", "mask_neg"}, []string{"mask_bias2"})
	g.Node("Reshape", []string{"mask_bias2", "shape_mask"}, []string{"mask_bias"})

	x := "x0"
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("l%d", l)
		heads := func(name string, perm ...int64) string {
			linear(x, p+"_"+name, h, h, p+"_"+name+"_lin")
			g.Node("Reshape", []string{p + "_" + name + "_lin", "shape_heads"}, []string{p + "_" + name + "_4d"})
			g.Node("Transpose", []string{p + "_" + name + "_4d"}, []string{p + "_" + name + "_t"}, onnxgen.AttrInts("perm", perm...))
			return p + "_" + name + "_t"
		}
		q := heads("q", 0, 2, 1, 3) // [1,nh,s,hd]
		k := heads("k", 0, 2, 3, 1) // [1,nh,hd,s]
		v := heads("v", 0, 2, 1, 3) // [1,nh,s,hd]
		g.Node("MatMul", []string{q, k}, []string{p + "_scores"})
		g.Node("Div", []string{p + "_scores", "scale"}, []string{p + "_scaled"})
		g.Node("Add", []string{p + "_scaled", "mask_bias"}, []string{p + "_masked"})
		g.Node("Softmax", []string{p + "_masked"}, []string{p + "_probs"}, onnxgen.AttrInt("axis", -1))
		g.Node("MatMul", []string{p + "_probs", v}, []string{p + "_ctx"})
		g.Node("Transpose", []string{p + "_ctx"}, []string{p + "_ctx_t"}, onnxgen.AttrInts("perm", 0, 2, 1, 3))
		g.Node("Reshape", []string{p + "_ctx_t", "shape_model"}, []string{p + "_ctx_m"})
		x0 := x
		x = p + "_ctx_m"
		linear(x, p+"_o", h, h, p+"_attn")
		g.Node("Add", []string{x0, p + "_attn"}, []string{p + "_res1"})
		ln(p+"_res1", p+"_ln1", p+"_x1")

		// Feed-forward with GELU(x) = 0.5·x·(1 + erf(x/√2)).
		x = p + "_x1"
		linear(x, p+"_ff1", h, f, p+"_ff1_out")
		g.Node("Div", []string{p + "_ff1_out", "sqrt2"}, []string{p + "_g_div"})
		g.Node("Erf", []string{p + "_g_div"}, []string{p + "_g_erf"})
		g.Node("Add", []string{p + "_g_erf", "one"}, []string{p + "_g_add"})
		g.Node("Mul", []string{p + "_ff1_out", p + "_g_add"}, []string{p + "_g_mul"})
		g.Node("Mul", []string{p + "_g_mul", "half"}, []string{p + "_gelu"})
		x = p + "_gelu"
		linear(x, p+"_ff2", f, h, p+"_ff2_out")
		g.Node("Add", []string{p + "_x1", p + "_ff2_out"}, []string{p + "_res2"})
		out := p + "_out"
		if l == c.Layers-1 {
			out = "last_hidden_state"
		}
		ln(p+"_res2", p+"_ln2", out)
		x = out
	}
	return g.Model()
}

// ResNetConfig is the shape of a ResNet-18-style CNN.
type ResNetConfig struct {
	Image   int // input height and width
	Width   int // channels of the first stage (64 in ResNet-18)
	Classes int // outputs of the classifier
	Seed    uint64
}

// ResNet18 is ResNet-18's shape at 224x224 with 1000 classes: about 11.7
// million float32 weights (47 MB).
var ResNet18 = ResNetConfig{Image: 224, Width: 64, Classes: 1000, Seed: 11}

// ResNet returns an ONNX model (opset 17) with ResNet-18's structure and
// deterministic random weights, batch normalisation folded into the
// convolutions: input "image" float32 [1,3,Image,Image], output "logits"
// float32 [1,Classes]. A 7x7 stride-2 Conv, Relu and a 3x3 stride-2
// MaxPool, then four stages of two basic blocks (two 3x3 Conv, a residual
// Add and Relu; a 1x1 stride-2 Conv on the shortcut where the shape
// changes), GlobalAveragePool, Flatten and Gemm.
func ResNet(c ResNetConfig) ([]byte, error) {
	if c.Image < 32 || c.Width < 1 || c.Classes < 1 {
		return nil, fmt.Errorf("bench: resnet config %+v: image must be at least 32, width and classes positive", c)
	}
	r := onnxgen.NewRand(c.Seed)
	g := onnxgen.NewGraph(fmt.Sprintf("resnet18_%d", c.Image))
	img := int64(c.Image)
	g.Input("image", tensor.F32, onnxgen.Dims(1, 3, img, img)...)
	g.Output("logits", tensor.F32, onnxgen.Dims(1, int64(c.Classes))...)
	n := 0
	conv := func(x string, in, out, k, stride int64, relu bool) string {
		n++
		name := fmt.Sprintf("conv%d", n)
		// Uniform weights in ±sqrt(6/fan_in) keep the activations' scale
		// (He initialisation); biases stand for folded batch norms.
		w := weights(g, r, name+"_w", float32(math.Sqrt(6/float64(in*k*k))), out, in, k, k)
		b := weights(g, r, name+"_b", 0.05, out)
		pad := k / 2
		g.Node("Conv", []string{x, w, b}, []string{name},
			onnxgen.AttrInts("kernel_shape", k, k), onnxgen.AttrInts("strides", stride, stride),
			onnxgen.AttrInts("pads", pad, pad, pad, pad))
		if !relu {
			return name
		}
		g.Node("Relu", []string{name}, []string{name + "_relu"})
		return name + "_relu"
	}
	w := int64(c.Width)
	x := conv("image", 3, w, 7, 2, true)
	g.Node("MaxPool", []string{x}, []string{"pool"},
		onnxgen.AttrInts("kernel_shape", 3, 3), onnxgen.AttrInts("strides", 2, 2), onnxgen.AttrInts("pads", 1, 1, 1, 1))
	x = "pool"
	in := w
	for stage, ch := range []int64{w, 2 * w, 4 * w, 8 * w} {
		for block := 0; block < 2; block++ {
			stride := int64(1)
			if stage > 0 && block == 0 {
				stride = 2
			}
			shortcut := x
			if stride != 1 || in != ch {
				shortcut = conv(x, in, ch, 1, stride, false)
			}
			y := conv(x, in, ch, 3, stride, true)
			y = conv(y, ch, ch, 3, 1, false)
			sum := fmt.Sprintf("s%d_b%d_add", stage, block)
			g.Node("Add", []string{y, shortcut}, []string{sum})
			g.Node("Relu", []string{sum}, []string{sum + "_relu"})
			x, in = sum+"_relu", ch
		}
	}
	g.Node("GlobalAveragePool", []string{x}, []string{"gap"})
	g.Node("Flatten", []string{"gap"}, []string{"flat"}, onnxgen.AttrInt("axis", 1))
	fcw := weights(g, r, "fc_w", float32(1/math.Sqrt(float64(in))), in, int64(c.Classes))
	fcb := weights(g, r, "fc_b", 0.01, int64(c.Classes))
	g.Node("Gemm", []string{"flat", fcw, fcb}, []string{"logits"})
	return g.Model()
}

// ImageToImage returns a small fully convolutional model that maps an
// image to an image of the same size, as segmentation and enhancement
// models do: input "image" float32 [1,3,size,size], output "mask" float32
// [1,1,size,size]. Two 3x3 Conv layers of 8 channels with Relu, then a 1x1
// Conv to one channel and a Sigmoid. At 512x512 it carries 3 MiB in and
// 1 MiB out.
func ImageToImage(size int64, seed uint64) ([]byte, error) {
	r := onnxgen.NewRand(seed)
	g := onnxgen.NewGraph(fmt.Sprintf("img2img_%d", size))
	g.Input("image", tensor.F32, onnxgen.Dims(1, 3, size, size)...)
	g.Output("mask", tensor.F32, onnxgen.Dims(1, 1, size, size)...)
	x := "image"
	in := int64(3)
	for i, out := range []int64{8, 8} {
		name := fmt.Sprintf("conv%d", i)
		w := weights(g, r, name+"_w", float32(math.Sqrt(6/float64(in*9))), out, in, 3, 3)
		b := weights(g, r, name+"_b", 0.05, out)
		g.Node("Conv", []string{x, w, b}, []string{name}, onnxgen.AttrInts("kernel_shape", 3, 3), onnxgen.AttrInts("pads", 1, 1, 1, 1))
		g.Node("Relu", []string{name}, []string{name + "_relu"})
		x, in = name+"_relu", out
	}
	w := weights(g, r, "head_w", float32(math.Sqrt(6/float64(in))), 1, in, 1, 1)
	b := weights(g, r, "head_b", 0.05, 1)
	g.Node("Conv", []string{x, w, b}, []string{"logits"}, onnxgen.AttrInts("kernel_shape", 1, 1))
	g.Node("Sigmoid", []string{"logits"}, []string{"mask"})
	return g.Model()
}

// WideOutput returns a model with a small input and a large output, as a
// decoder or an upsampler has: input "x" float32 [1,n], output "y" float32
// [n,n] = tanh(xᵀ·x + b) (an outer product: n² values from n). At n = 1024
// it takes 4 KiB in and gives 4 MiB out.
func WideOutput(n int64, seed uint64) ([]byte, error) {
	r := onnxgen.NewRand(seed)
	g := onnxgen.NewGraph(fmt.Sprintf("wide_output_%d", n))
	g.Input("x", tensor.F32, onnxgen.Dims(1, n)...)
	g.Output("y", tensor.F32, onnxgen.Dims(n, n)...)
	b := weights(g, r, "b", 0.5, 1, n)
	g.Node("Transpose", []string{"x"}, []string{"xt"}, onnxgen.AttrInts("perm", 1, 0))
	g.Node("MatMul", []string{"xt", "x"}, []string{"outer"})
	g.Node("Add", []string{"outer", b}, []string{"biased"})
	g.Node("Tanh", []string{"biased"}, []string{"y"})
	return g.Model()
}
