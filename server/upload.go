package server

import (
	"google.golang.org/grpc/codes"

	"github.com/blindfold-ai/blindfold/internal/secmem"
	"github.com/blindfold-ai/blindfold/store"
)

// upload gathers the model bytes of one upload. The limit is enforced on
// the bytes that arrive; the declared length only sizes the buffer (and
// must match what arrives, when given). Every byte is reserved against the
// store's total cap before it is kept. The bytes are kept outside the Go
// heap (see package secmem): off core dumps, out of the garbage
// collector's pacing, and returned to the system at wipe.
type upload struct {
	limit    int64
	declared uint64
	res      *store.Reservation
	buf      secmem.Buffer
}

// declare sets the model's length before its bytes arrive (0: unknown),
// reserving it and sizing the buffer once.
func (u *upload) declare(n uint64) error {
	switch {
	case n == 0 || n == u.declared:
		return nil
	case u.declared != 0:
		return errorf(codes.InvalidArgument, "the upload declares %d bytes, after declaring %d", n, u.declared)
	case n > uint64(u.limit):
		return errorf(codes.ResourceExhausted, "the upload declares %d bytes, over the server's model size limit of %d bytes (max_model_bytes)", n, u.limit)
	case n < uint64(u.buf.Len()):
		return errorf(codes.InvalidArgument, "the upload declares %d bytes after %d arrived", n, u.buf.Len())
	}
	if extra := int64(n) - u.res.Size(); extra > 0 {
		if err := u.res.Grow(extra); err != nil {
			return modelRoomStatus(err)
		}
	}
	if err := u.buf.Grow(int(n) - u.buf.Len()); err != nil {
		return errorf(codes.ResourceExhausted, "no memory for a %d-byte model: %v", n, err)
	}
	u.declared = n
	return nil
}

// addBytes keeps more model bytes.
func (u *upload) addBytes(data []byte) error {
	n := int64(u.buf.Len()) + int64(len(data))
	if n > u.limit {
		return errorf(codes.ResourceExhausted, "the model is larger than the server's limit of %d bytes (max_model_bytes), counted on the bytes received", u.limit)
	}
	if extra := n - u.res.Size(); extra > 0 {
		if err := u.res.Grow(extra); err != nil {
			return modelRoomStatus(err)
		}
	}
	if err := u.buf.Append(data); err != nil {
		return errorf(codes.ResourceExhausted, "no memory for more model bytes: %v", err)
	}
	return nil
}

// finish returns the model bytes once they have all arrived. They are
// valid until wipe.
func (u *upload) finish() ([]byte, error) {
	if u.buf.Len() == 0 {
		return nil, errorf(codes.InvalidArgument, "empty upload: no model bytes arrived")
	}
	if u.declared != 0 && uint64(u.buf.Len()) != u.declared {
		return nil, errorf(codes.InvalidArgument, "the upload declared %d bytes but %d arrived; refusing a truncated or padded model", u.declared, u.buf.Len())
	}
	return u.buf.Bytes(), nil
}

// wipe zeroes the model bytes and gives their memory back.
func (u *upload) wipe() { u.buf.Free() }
