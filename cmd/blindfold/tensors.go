package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/tensor"
)

// readNPYFile reads a .npy file as a tensor named name.
func readNPYFile(path, name string) (tensor.Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return tensor.Tensor{}, withCode(exitIO, fmt.Errorf("reading input: %w", err))
	}
	defer f.Close()
	t, err := tensor.ReadNPY(f, path)
	if err != nil {
		return tensor.Tensor{}, withCode(exitIO, err)
	}
	t.Name = name
	return t, nil
}

// outputFileName makes a safe file name for output i: its name with every
// character outside [A-Za-z0-9._-] replaced by '_', or output_I.
func outputFileName(name string, i int) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == '.' && b.Len() > 0:
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := b.String()
	if strings.Trim(s, "_.") == "" {
		s = fmt.Sprintf("output_%d", i)
	}
	return s + ".npy"
}

// writeOutputs writes each output as dir/NAME.npy and returns the paths.
func writeOutputs(e *env, dir string, outs []tensor.Tensor) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, withCode(exitIO, fmt.Errorf("creating the output folder: %w", err))
	}
	used := map[string]bool{}
	paths := make([]string, len(outs))
	for i, t := range outs {
		name := outputFileName(t.Name, i)
		if used[name] {
			name = fmt.Sprintf("%s_%d.npy", strings.TrimSuffix(name, ".npy"), i)
		}
		used[name] = true
		if t.DType == tensor.BF16 {
			fmt.Fprintf(e.stderr, "note: output %q is bfloat16, which .npy cannot hold; %s holds its uint16 bit patterns\n", t.Name, name)
			t = tensor.AsBits(t)
		}
		p := filepath.Join(dir, name)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, withCode(exitIO, fmt.Errorf("writing output: %w", err))
		}
		err = tensor.WriteNPY(f, t)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, withCode(exitIO, fmt.Errorf("writing output %s: %w", p, err))
		}
		paths[i] = p
	}
	return paths, nil
}

func printRunSummary(w io.Writer, res *client.RunResult, files []string) {
	fmt.Fprintf(w, "model_id:       %s\n", res.ModelID)
	fmt.Fprintf(w, "inference_time: %s\n", res.InferenceTime)
	if res.InputHash != nil {
		fmt.Fprintf(w, "input_sha256:   %s\n", hex.EncodeToString(res.InputHash))
	}
	fmt.Fprintf(w, "signed:         %t\n", res.Signed)
	for i, t := range res.Outputs {
		fmt.Fprintf(w, "output %d: %s %s%v", i, t.Name, t.DType, t.Shape)
		if files != nil {
			fmt.Fprintf(w, " -> %s", files[i])
		} else if n, _ := tensor.NumElements(t.Shape); n <= 16 {
			if v, err := jsonValues(t); err == nil {
				b, _ := json.Marshal(v)
				fmt.Fprintf(w, " = %s", b)
			}
		}
		fmt.Fprintln(w)
	}
}

// runJSON is the --json form of a run result.
type runJSON struct {
	ModelID         string       `json:"model_id"`
	InferenceTimeNs int64        `json:"inference_time_ns"`
	InputSHA256     string       `json:"input_sha256,omitempty"`
	Signed          bool         `json:"signed"`
	Outputs         []outputJSON `json:"outputs"`
}

type outputJSON struct {
	Name   string  `json:"name"`
	DType  string  `json:"dtype"`
	Shape  []int64 `json:"shape"`
	File   string  `json:"file,omitempty"`
	Values any     `json:"values,omitempty"`
	// ValuesOmitted is true when the output has more elements than
	// --json-max-elements.
	ValuesOmitted bool `json:"values_omitted,omitempty"`
}

func printRunJSON(w io.Writer, res *client.RunResult, files []string, maxElems int) error {
	out := runJSON{
		ModelID:         res.ModelID,
		InferenceTimeNs: res.InferenceTime.Nanoseconds(),
		InputSHA256:     hex.EncodeToString(res.InputHash),
		Signed:          res.Signed,
		Outputs:         []outputJSON{},
	}
	for i, t := range res.Outputs {
		o := outputJSON{Name: t.Name, DType: t.DType.String(), Shape: t.Shape}
		if o.Shape == nil {
			o.Shape = []int64{}
		}
		if files != nil {
			o.File = files[i]
		}
		if n, _ := tensor.NumElements(t.Shape); n <= int64(maxElems) {
			v, err := jsonValues(t)
			if err != nil {
				return err
			}
			o.Values = v
		} else {
			o.ValuesOmitted = true
		}
		out.Outputs = append(out.Outputs, o)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// jsonValues returns t's elements as a flat list of JSON-encodable values
// (row-major). Non-finite floats become the strings "NaN", "Infinity" and
// "-Infinity"; float16 and bfloat16 are converted to numbers.
func jsonValues(t tensor.Tensor) ([]any, error) {
	var floats []float64
	switch t.DType {
	case tensor.F32:
		v, err := tensor.Values[float32](t)
		if err != nil {
			return nil, err
		}
		for _, x := range v {
			floats = append(floats, float64(x))
		}
	case tensor.F64:
		v, err := tensor.Values[float64](t)
		if err != nil {
			return nil, err
		}
		floats = v
	case tensor.F16, tensor.BF16:
		v, err := tensor.Values[uint16](t)
		if err != nil {
			return nil, err
		}
		for _, b := range v {
			if t.DType == tensor.F16 {
				floats = append(floats, float64(halfToFloat32(b)))
			} else {
				floats = append(floats, float64(math.Float32frombits(uint32(b)<<16)))
			}
		}
	default:
		return intValues(t)
	}
	out := make([]any, len(floats))
	for i, f := range floats {
		switch {
		case math.IsNaN(f):
			out[i] = "NaN"
		case math.IsInf(f, 1):
			out[i] = "Infinity"
		case math.IsInf(f, -1):
			out[i] = "-Infinity"
		default:
			out[i] = f
		}
	}
	return out, nil
}

// anyValues decodes t's elements as T, boxed for JSON.
func anyValues[T tensor.Element](t tensor.Tensor) ([]any, error) {
	v, err := tensor.Values[T](t)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(v))
	for i, e := range v {
		out[i] = e
	}
	return out, nil
}

func intValues(t tensor.Tensor) ([]any, error) {
	switch t.DType {
	case tensor.I8:
		return anyValues[int8](t)
	case tensor.I16:
		return anyValues[int16](t)
	case tensor.I32:
		return anyValues[int32](t)
	case tensor.I64:
		return anyValues[int64](t)
	case tensor.U8:
		return anyValues[uint8](t)
	case tensor.U16:
		return anyValues[uint16](t)
	case tensor.U32:
		return anyValues[uint32](t)
	case tensor.U64:
		return anyValues[uint64](t)
	case tensor.Bool:
		return anyValues[bool](t)
	}
	return nil, fmt.Errorf("output %q: cannot print element type %s", t.Name, t.DType)
}

// halfToFloat32 converts IEEE 754 binary16 bits to float32.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp == 0 && frac == 0: // zero
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: value = frac * 2^-24
		f := float32(frac) * float32(math.Ldexp(1, -24))
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}
