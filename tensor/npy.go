package tensor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// NumPy .npy support.
//
// ReadNPY accepts format versions 1.0, 2.0 and 3.0, little-endian (or
// byte-order-free) descriptors of the element types below, and C order
// only. WriteNPY writes version 1.0 (2.0 when the header would not fit),
// with the header padded so that the data starts on a 64-byte boundary, as
// NumPy does.
//
//	float32 <f4   float64 <f8   float16 <f2
//	int8    |i1   int16   <i2   int32   <i4   int64 <i8
//	uint8   |u1   uint16  <u2   uint32  <u4   uint64 <u8
//	bool    |b1
//
// bfloat16 has no NumPy descriptor (NumPy itself has no such type; the
// ml_dtypes extension stores it as an opaque two-byte void). WriteNPY refuses
// BF16 tensors with ErrBFloat16NPY, and ReadNPY never produces one. A caller
// that must keep bfloat16 values in a .npy file can store their bit patterns
// as uint16 (see AsBits) and convert them back with FromBits.

// npyMagic starts every .npy file.
const npyMagic = "\x93NUMPY"

// npyMaxHeader bounds the header length accepted on read. NumPy itself
// refuses headers over 10,000 bytes by default; a shape of a few dozen
// dimensions needs far less.
const npyMaxHeader = 1 << 16

// ErrBFloat16NPY is returned by WriteNPY for a bfloat16 tensor: NumPy has no
// descriptor for that type.
var ErrBFloat16NPY = errors.New("tensor: bfloat16 has no NumPy .npy descriptor; convert to float32, or store the bit patterns as uint16 (tensor.AsBits)")

var npyDescr = map[DType]string{
	F32: "<f4", F64: "<f8", F16: "<f2",
	I8: "|i1", I16: "<i2", I32: "<i4", I64: "<i8",
	U8: "|u1", U16: "<u2", U32: "<u4", U64: "<u8",
	Bool: "|b1",
}

// npyDType maps a descriptor (type character and size, without byte order)
// to a DType.
var npyDType = map[string]DType{
	"f4": F32, "f8": F64, "f2": F16,
	"i1": I8, "i2": I16, "i4": I32, "i8": I64,
	"u1": U8, "u2": U16, "u4": U32, "u8": U64,
	"b1": Bool,
}

// NPYError describes why a .npy stream was refused.
type NPYError struct {
	// Name is the name given to ReadNPY (a file name, say).
	Name string
	// Reason says what was wrong and what is allowed.
	Reason string
}

func (e *NPYError) Error() string {
	if e.Name == "" {
		return "npy: " + e.Reason
	}
	return "npy " + e.Name + ": " + e.Reason
}

// ReadNPY reads one array in NumPy .npy format from r and returns it as a
// tensor named name. The stream must hold exactly the bytes the header's
// shape needs: a short or over-long stream is an error. Fortran-ordered and
// big-endian arrays, object arrays and structured types are refused with a
// *NPYError saying so.
func ReadNPY(r io.Reader, name string) (Tensor, error) {
	fail := func(format string, args ...any) (Tensor, error) {
		return Tensor{}, &NPYError{Name: name, Reason: fmt.Sprintf(format, args...)}
	}
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return fail("reading the preamble: %v (is this a .npy file?)", err)
	}
	if string(pre[:6]) != npyMagic {
		return fail("not a .npy file: missing the \\x93NUMPY magic string")
	}
	major, minor := pre[6], pre[7]
	var hlen int
	switch {
	case major == 1 && minor == 0:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return fail("reading the header length: %v", err)
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case (major == 2 || major == 3) && minor == 0:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return fail("reading the header length: %v", err)
		}
		n := binary.LittleEndian.Uint32(b[:])
		if n > npyMaxHeader {
			return fail("header length %d exceeds the limit of %d bytes", n, npyMaxHeader)
		}
		hlen = int(n)
	default:
		return fail("format version %d.%d not supported (allowed: 1.0, 2.0, 3.0)", major, minor)
	}
	header := make([]byte, hlen)
	if _, err := io.ReadFull(r, header); err != nil {
		return fail("reading the %d-byte header: %v", hlen, err)
	}
	h, err := parseNPYHeader(header, major == 3)
	if err != nil {
		return fail("%v", err)
	}
	dt, err := descrDType(h.descr)
	if err != nil {
		return fail("%v", err)
	}
	if h.fortran {
		return fail("fortran_order is True; only C-order arrays are supported (save with numpy.ascontiguousarray)")
	}
	want, err := ByteSize(dt, h.shape)
	if err != nil {
		return fail("shape %v: %v", h.shape, err)
	}
	// Read incrementally so that a header claiming a huge shape cannot make
	// us allocate memory the stream does not back.
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, want))
	if err != nil {
		return fail("reading data: %v", err)
	}
	if n != want {
		return fail("data is %d bytes, but %s%v needs %d", n, dt, h.shape, want)
	}
	var extra [1]byte
	if k, _ := io.ReadFull(r, extra[:]); k != 0 {
		return fail("trailing bytes after the %d data bytes of %s%v", want, dt, h.shape)
	}
	data := buf.Bytes()
	if dt == Bool {
		for i, b := range data {
			if b > 1 {
				return fail("bool element %d is %d; must be 0 or 1", i, b)
			}
		}
	}
	if data == nil {
		data = []byte{}
	}
	return Tensor{Name: name, DType: dt, Shape: h.shape, Data: data}, nil
}

// descrDType maps a NumPy type descriptor to a DType.
func descrDType(descr string) (DType, error) {
	if len(descr) < 3 {
		return 0, fmt.Errorf("descr %q is not a supported type (allowed: %s)", descr, allowedDescrs())
	}
	order, code := descr[0], descr[1:]
	dt, ok := npyDType[code]
	if !ok {
		return 0, fmt.Errorf("descr %q is not a supported type (allowed: %s)", descr, allowedDescrs())
	}
	single := dt.Size() == 1
	switch {
	case order == '<' || (single && order == '|'):
		return dt, nil
	case order == '>' && !single:
		return 0, fmt.Errorf("descr %q is big-endian; only little-endian arrays are supported (convert with arr.astype(arr.dtype.newbyteorder('<')))", descr)
	case order == '>' && single:
		// One-byte types have no byte order; NumPy writes '|', but '>' is
		// harmless.
		return dt, nil
	case order == '=':
		return 0, fmt.Errorf("descr %q uses native byte order; only explicit little-endian ('<') descriptors are supported", descr)
	default:
		return 0, fmt.Errorf("descr %q has byte order %q; allowed: %s", descr, order, allowedDescrs())
	}
}

func allowedDescrs() string {
	var s []string
	for _, d := range DTypes() {
		if v, ok := npyDescr[d]; ok {
			s = append(s, v)
		}
	}
	return strings.Join(s, " ")
}

type npyHeader struct {
	descr   string
	fortran bool
	shape   []int64
}

// parseNPYHeader parses the header dictionary, a Python literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }. It takes
// exactly the three keys, each once, with string, boolean and tuple-of-
// integers values; anything else is refused.
func parseNPYHeader(b []byte, utf8 bool) (npyHeader, error) {
	var h npyHeader
	if !utf8 {
		// Versions 1.0 and 2.0 are latin-1; every character we accept is
		// ASCII, so anything above 0x7f is simply refused below.
		for i, c := range b {
			if c >= 0x80 {
				return h, fmt.Errorf("header byte %d is not ASCII (0x%02x)", i, c)
			}
		}
	}
	p := &pyParser{s: string(b)}
	p.skipSpace()
	if !p.eat('{') {
		return h, errors.New("header is not a Python dict literal")
	}
	seen := map[string]bool{}
	for {
		p.skipSpace()
		if p.eat('}') {
			break
		}
		key, err := p.str()
		if err != nil {
			return h, fmt.Errorf("header key: %w", err)
		}
		if seen[key] {
			return h, fmt.Errorf("header key %q appears twice", key)
		}
		seen[key] = true
		p.skipSpace()
		if !p.eat(':') {
			return h, fmt.Errorf("header: expected ':' after key %q", key)
		}
		p.skipSpace()
		switch key {
		case "descr":
			if p.peek() != '\'' && p.peek() != '"' {
				return h, errors.New("header: descr must be a string; structured (record) dtypes are not supported")
			}
			if h.descr, err = p.str(); err != nil {
				return h, fmt.Errorf("header descr: %w", err)
			}
		case "fortran_order":
			if h.fortran, err = p.boolean(); err != nil {
				return h, fmt.Errorf("header fortran_order: %w", err)
			}
		case "shape":
			if h.shape, err = p.tuple(); err != nil {
				return h, fmt.Errorf("header shape: %w", err)
			}
		default:
			return h, fmt.Errorf("header has unexpected key %q (allowed: descr, fortran_order, shape)", key)
		}
		p.skipSpace()
		if p.eat(',') {
			continue
		}
		p.skipSpace()
		if !p.eat('}') {
			return h, errors.New("header: expected ',' or '}' in dict")
		}
		break
	}
	p.skipSpace()
	if !p.done() {
		return h, errors.New("header: unexpected text after the dict")
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return h, fmt.Errorf("header lacks key %q", k)
		}
	}
	return h, nil
}

type pyParser struct {
	s string
	i int
}

func (p *pyParser) done() bool { return p.i >= len(p.s) }

func (p *pyParser) peek() byte {
	if p.done() {
		return 0
	}
	return p.s[p.i]
}

func (p *pyParser) eat(c byte) bool {
	if p.peek() == c && !p.done() {
		p.i++
		return true
	}
	return false
}

func (p *pyParser) skipSpace() {
	for !p.done() {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// str parses a quoted string without escapes (none of the values we accept
// need one).
func (p *pyParser) str() (string, error) {
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", errors.New("expected a quoted string")
	}
	p.i++
	start := p.i
	for !p.done() {
		c := p.s[p.i]
		switch {
		case c == q:
			v := p.s[start:p.i]
			p.i++
			return v, nil
		case c == '\\' || c == '\n':
			return "", errors.New("escapes and newlines in strings are not supported")
		}
		p.i++
	}
	return "", errors.New("unterminated string")
}

func (p *pyParser) boolean() (bool, error) {
	rest := p.s[p.i:]
	switch {
	case strings.HasPrefix(rest, "True"):
		p.i += 4
		return true, nil
	case strings.HasPrefix(rest, "False"):
		p.i += 5
		return false, nil
	}
	return false, errors.New("expected True or False")
}

// tuple parses a tuple of non-negative decimal integers: (), (3,), (2, 3).
func (p *pyParser) tuple() ([]int64, error) {
	if !p.eat('(') {
		return nil, errors.New("expected a tuple such as (2, 3)")
	}
	dims := []int64{}
	for {
		p.skipSpace()
		if p.eat(')') {
			if len(dims) == 1 && !p.trailingComma() {
				return nil, errors.New("a one-element tuple needs a trailing comma")
			}
			return dims, nil
		}
		start := p.i
		for !p.done() && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		if p.i == start {
			return nil, errors.New("dimensions must be non-negative integers")
		}
		if p.i-start > 1 && p.s[start] == '0' {
			return nil, fmt.Errorf("dimension %q has a leading zero", p.s[start:p.i])
		}
		d, err := strconv.ParseInt(p.s[start:p.i], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("dimension %q: out of range", p.s[start:p.i])
		}
		if len(dims) >= 64 {
			return nil, errors.New("more than 64 dimensions")
		}
		dims = append(dims, d)
		p.skipSpace()
		if p.eat(',') {
			continue
		}
		p.skipSpace()
		if p.peek() != ')' {
			return nil, errors.New("expected ',' or ')' in tuple")
		}
	}
}

// trailingComma reports whether the tuple that ended just before p.i
// (at the ')') had a comma after its last element.
func (p *pyParser) trailingComma() bool {
	j := p.i - 2 // before ')'
	for j >= 0 && strings.IndexByte(" \t\r\n", p.s[j]) >= 0 {
		j--
	}
	return j >= 0 && p.s[j] == ','
}

// WriteNPY writes t to w in NumPy .npy format (version 1.0, or 2.0 when the
// header needs more than 65535 bytes), C order, little-endian. bfloat16
// tensors are refused with ErrBFloat16NPY.
func WriteNPY(w io.Writer, t Tensor) error {
	if t.DType == BF16 {
		return ErrBFloat16NPY
	}
	descr, ok := npyDescr[t.DType]
	if !ok {
		return fmt.Errorf("tensor %q: element type %s has no .npy descriptor", t.Name, t.DType)
	}
	if err := t.Validate(); err != nil {
		return err
	}
	var shape strings.Builder
	shape.WriteByte('(')
	for i, d := range t.Shape {
		if i > 0 {
			shape.WriteString(", ")
		}
		shape.WriteString(strconv.FormatInt(d, 10))
	}
	if len(t.Shape) == 1 {
		shape.WriteByte(',')
	}
	shape.WriteByte(')')
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape.String())

	version, lenSize := byte(1), 2
	hlen := npyHeaderLen(len(dict), lenSize)
	if hlen > 0xffff {
		version, lenSize = 2, 4
		hlen = npyHeaderLen(len(dict), lenSize)
	}
	pad := hlen - len(dict) - 1

	var hdr bytes.Buffer
	hdr.WriteString(npyMagic)
	hdr.WriteByte(version)
	hdr.WriteByte(0)
	if lenSize == 2 {
		_ = binary.Write(&hdr, binary.LittleEndian, uint16(hlen))
	} else {
		_ = binary.Write(&hdr, binary.LittleEndian, uint32(hlen))
	}
	hdr.WriteString(dict)
	hdr.WriteString(strings.Repeat(" ", pad))
	hdr.WriteByte('\n')
	if _, err := w.Write(hdr.Bytes()); err != nil {
		return fmt.Errorf("writing .npy header: %w", err)
	}
	if _, err := w.Write(t.Data); err != nil {
		return fmt.Errorf("writing .npy data: %w", err)
	}
	return nil
}

// npyHeaderLen returns the header length (dict, padding and newline) that
// makes the data start on a 64-byte boundary.
func npyHeaderLen(dictLen, lenSize int) int {
	total := len(npyMagic) + 2 + lenSize + dictLen + 1
	return dictLen + 1 + (64-total%64)%64
}

// AsBits returns a copy of a float16 or bfloat16 tensor retyped as uint16
// (its raw bit patterns), for formats such as .npy that lack bfloat16.
// Other tensors are returned unchanged.
func AsBits(t Tensor) Tensor {
	if t.DType != F16 && t.DType != BF16 {
		return t
	}
	t.DType = U16
	t.Shape = append([]int64(nil), t.Shape...)
	t.Data = append([]byte(nil), t.Data...)
	return t
}
