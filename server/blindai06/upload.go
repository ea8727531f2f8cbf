package blindai06

import (
	"errors"
	"io"
)

// modelSink takes an upload's model bytes (server.ModelSink).
type modelSink interface {
	Declare(n uint64) error
	Write(p []byte) (int, error)
}

// chunkBytes is how many model bytes are gathered before they go to the
// sink.
const chunkBytes = 64 << 10

// decodeUpload streams the body of POST /upload, a CBOR map, into sink:
// the model (an array of integers 0-255, one per byte, as 0.6 clients send
// it, or a byte string) goes to the sink in chunks as it arrives, without
// a Go value per byte; the declared array length sizes the buffer once,
// within max_model_bytes. length, when present, must match. model_name,
// optimize, client_info and unknown keys are read within maxFieldBytes and
// otherwise ignored (0.6 names every upload with a fresh id).
func decodeUpload(r io.Reader, sink modelSink) error {
	c := &cborReader{r: r, buf: make([]byte, chunkBytes)}
	defer c.wipe()
	major, arg, indef, err := c.head()
	if err == io.EOF {
		return badRequest("the request body is empty; it must be a CBOR map with the model")
	}
	if err != nil {
		return c.fail(err)
	}
	if major != majorMap {
		return badRequest("the request body must be a CBOR map, not %s", majorName(major))
	}
	if !indef && arg > maxMapPairs {
		return badRequest("the request map has %d keys; at most %d are allowed", arg, maxMapPairs)
	}
	var (
		size            uint64
		length          uint64
		seenModel, seen bool
	)
	for i := uint64(0); indef || i < arg; i++ {
		if indef {
			if i >= maxMapPairs {
				return badRequest("the request map has more than %d keys", maxMapPairs)
			}
			brk, err := c.isBreak()
			if err != nil {
				return c.fail(err)
			}
			if brk {
				break
			}
		}
		key, err := c.key()
		if err != nil {
			return c.fail(err)
		}
		switch key {
		case "model":
			if seenModel {
				return badRequest("the key \"model\" appears twice")
			}
			seenModel = true
			if size, err = c.model(sink); err != nil {
				return c.fail(err)
			}
		case "length":
			if seen {
				return badRequest("the key \"length\" appears twice")
			}
			seen = true
			raw, err := c.raw()
			if err != nil {
				return c.fail(err)
			}
			if err := decMode.Unmarshal(raw, &length); err != nil {
				return badRequest("length must be an unsigned integer: %v", err)
			}
		case "model_name":
			raw, err := c.raw()
			if err != nil {
				return c.fail(err)
			}
			var name *string
			if err := decMode.Unmarshal(raw, &name); err != nil {
				return badRequest("model_name must be text: %v", err)
			}
		case "optimize":
			raw, err := c.raw()
			if err != nil {
				return c.fail(err)
			}
			var b *bool
			if err := decMode.Unmarshal(raw, &b); err != nil {
				return badRequest("optimize must be a boolean: %v", err)
			}
		default: // client_info (telemetry, never logged) and unknown keys
			raw, err := c.raw()
			clear(raw)
			if err != nil {
				return c.fail(err)
			}
		}
	}
	if err := c.end(); err != nil {
		return c.fail(err)
	}
	if !seenModel {
		return badRequest("the request has no \"model\": the model's bytes, as an array of integers from 0 to 255")
	}
	if seen && length != size {
		return badRequest("length says %d bytes, but the model has %d", length, size)
	}
	return nil
}

// CBOR major types.
const (
	majorUint   = 0
	majorNeg    = 1
	majorBytes  = 2
	majorText   = 3
	majorArray  = 4
	majorMap    = 5
	majorTag    = 6
	majorSimple = 7
)

func majorName(m byte) string {
	return [...]string{"an unsigned integer", "a negative integer", "a byte string", "a text string", "an array", "a map", "a tag", "a simple value or float"}[m&7]
}

// errTruncated is a body that ends inside a CBOR item.
var errTruncated = errors.New("truncated")

// cborReader reads CBOR items one head at a time from a body, through a
// buffer it zeroes at the end (it holds model bytes).
type cborReader struct {
	r   io.Reader
	buf []byte
	pos int
	lim int
	// rec, when not nil, records the bytes read (raw), up to
	// maxFieldBytes.
	rec []byte
	// recording is on while raw reads an item.
	recording bool
}

// fail turns a reader error into a status.
func (c *cborReader) fail(err error) error {
	if errors.Is(err, errTruncated) || errors.Is(err, io.EOF) {
		return badRequest("the request body is truncated: it ends inside a CBOR item")
	}
	return asStatus(err)
}

func (c *cborReader) wipe() {
	clear(c.buf)
	clear(c.rec)
}

// fill reads more of the body; io.EOF at its end.
func (c *cborReader) fill() error {
	if c.pos < c.lim {
		return nil
	}
	n, err := c.r.Read(c.buf)
	for n == 0 && err == nil {
		n, err = c.r.Read(c.buf)
	}
	c.pos, c.lim = 0, n
	if n > 0 {
		return nil
	}
	return err
}

func (c *cborReader) byte1() (byte, error) {
	if err := c.fill(); err != nil {
		if err == io.EOF {
			return 0, errTruncated
		}
		return 0, err
	}
	b := c.buf[c.pos]
	c.pos++
	if c.recording {
		if len(c.rec) >= maxFieldBytes {
			return 0, badRequest("a field of the request is over %d bytes", maxFieldBytes)
		}
		c.rec = append(c.rec, b)
	}
	return b, nil
}

// head reads an item's head: its major type and argument, or that its
// length is indefinite. io.EOF only when the body ends before it.
func (c *cborReader) head() (major byte, arg uint64, indef bool, err error) {
	if err := c.fill(); err != nil {
		return 0, 0, false, err
	}
	b, err := c.byte1()
	if err != nil {
		return 0, 0, false, err
	}
	major, info := b>>5, b&31
	switch {
	case info < 24:
		return major, uint64(info), false, nil
	case info <= 27:
		n := 1 << (info - 24)
		for range n {
			x, err := c.byte1()
			if err != nil {
				return 0, 0, false, err
			}
			arg = arg<<8 | uint64(x)
		}
		return major, arg, false, nil
	case info == 31 && (major >= majorBytes && major <= majorMap):
		return major, 0, true, nil
	case info == 31 && major == majorSimple:
		return 0, 0, false, badRequest("an unexpected CBOR break")
	default:
		return 0, 0, false, badRequest("malformed CBOR (reserved additional information %d)", info)
	}
}

// isBreak consumes a break (0xff) if one comes next.
func (c *cborReader) isBreak() (bool, error) {
	if err := c.fill(); err != nil {
		if err == io.EOF {
			return false, errTruncated
		}
		return false, err
	}
	if c.buf[c.pos] == 0xff {
		c.pos++
		return true, nil
	}
	return false, nil
}

// end checks that nothing follows the request's map.
func (c *cborReader) end() error {
	switch err := c.fill(); err {
	case io.EOF:
		return nil
	case nil:
		return badRequest("bytes follow the request's CBOR map")
	default:
		return err
	}
}

// key reads a map key: text of at most 256 bytes.
func (c *cborReader) key() (string, error) {
	major, arg, indef, err := c.head()
	if err != nil {
		return "", err
	}
	if major != majorText || indef || arg > 256 {
		return "", badRequest("the request map's keys must be short text strings")
	}
	k := make([]byte, arg)
	for i := range k {
		if k[i], err = c.byte1(); err != nil {
			return "", err
		}
	}
	return string(k), nil
}

// raw reads one whole item (at most maxFieldBytes, maxNesting deep) and
// returns its encoding.
func (c *cborReader) raw() ([]byte, error) {
	c.rec, c.recording = c.rec[:0], true
	defer func() { c.recording = false }()
	if err := c.skip(0); err != nil {
		return nil, err
	}
	return c.rec, nil
}

// skip reads one item.
func (c *cborReader) skip(depth int) error {
	if depth > maxNesting {
		return badRequest("the request nests CBOR deeper than %d levels", maxNesting)
	}
	major, arg, indef, err := c.head()
	if err == io.EOF {
		return errTruncated
	}
	if err != nil {
		return err
	}
	switch major {
	case majorUint, majorNeg, majorSimple:
		return nil
	case majorTag:
		return c.skip(depth + 1)
	case majorBytes, majorText:
		if indef {
			for {
				brk, err := c.isBreak()
				if err != nil || brk {
					return err
				}
				if err := c.skip(depth + 1); err != nil {
					return err
				}
			}
		}
		if arg > maxFieldBytes {
			return badRequest("a field of the request is over %d bytes", maxFieldBytes)
		}
		for range arg {
			if _, err := c.byte1(); err != nil {
				return err
			}
		}
		return nil
	default: // array, map
		n := arg
		if major == majorMap {
			if n > maxMapPairs {
				return badRequest("a map of the request has more than %d keys", maxMapPairs)
			}
			n *= 2
		} else if n > maxArrayElements {
			return badRequest("an array of the request has more than %d elements", maxArrayElements)
		}
		for i := uint64(0); indef || i < n; i++ {
			if indef {
				if i > 2*maxArrayElements {
					return badRequest("an array or map of the request has too many elements")
				}
				brk, err := c.isBreak()
				if err != nil || brk {
					return err
				}
			}
			if err := c.skip(depth + 1); err != nil {
				return err
			}
		}
		return nil
	}
}

// model streams the model to sink and returns its length.
func (c *cborReader) model(sink modelSink) (uint64, error) {
	major, arg, indef, err := c.head()
	if err == io.EOF {
		return 0, errTruncated
	}
	if err != nil {
		return 0, err
	}
	chunk := make([]byte, 0, chunkBytes)
	defer clear(chunk[:cap(chunk)])
	var n uint64
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		_, err := sink.Write(chunk)
		n += uint64(len(chunk))
		chunk = chunk[:0]
		return err
	}
	switch {
	case major == majorArray:
		if !indef {
			if err := sink.Declare(arg); err != nil {
				return 0, err
			}
		}
		for i := uint64(0); indef || i < arg; i++ {
			b, err := c.byte1()
			if err != nil {
				return 0, err
			}
			switch {
			case b < 24: // an integer 0-23 in one byte
			case b == 0x18: // an integer 24-255 in two bytes
				if b, err = c.byte1(); err != nil {
					return 0, err
				}
			case b == 0xff && indef:
				return n, flush()
			default:
				return 0, badRequest("model[%d] is not an integer from 0 to 255 (the model is an array of its bytes)", i)
			}
			chunk = append(chunk, b)
			if len(chunk) == cap(chunk) {
				if err := flush(); err != nil {
					return 0, err
				}
			}
		}
		return n, flush()
	case major == majorBytes && !indef:
		if err := sink.Declare(arg); err != nil {
			return 0, err
		}
		for left := arg; left > 0; {
			if err := c.fill(); err != nil {
				if err == io.EOF {
					return 0, errTruncated
				}
				return 0, err
			}
			k := min(uint64(c.lim-c.pos), left)
			if _, err := sink.Write(c.buf[c.pos : c.pos+int(k)]); err != nil {
				return 0, err
			}
			c.pos += int(k)
			left -= k
			n += k
		}
		return n, nil
	default:
		return 0, badRequest("model must be an array of integers from 0 to 255 (the model's bytes), not %s", majorName(major))
	}
}
