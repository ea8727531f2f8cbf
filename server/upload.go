package server

import (
	"google.golang.org/grpc/codes"

	"github.com/blindfold-ai/blindfold/api/securedexchange"
	"github.com/blindfold-ai/blindfold/internal/secmem"
	"github.com/blindfold-ai/blindfold/store"
)

// upload gathers the model bytes of one SendModel stream. The limit is
// enforced on the bytes that arrive; the declared length only sizes the
// buffer (and must match what arrives, when given). Every byte is reserved
// against the store's total cap before it is kept. The bytes are kept
// outside the Go heap (see package secmem): off core dumps, out of the
// garbage collector's pacing, and returned to the system at wipe.
type upload struct {
	first    *securedexchange.SendModelRequest
	id       string // the upload's model id
	limit    int64
	declared uint64
	res      *store.Reservation
	buf      secmem.Buffer
	empty    int // chunks without model bytes
}

// newUpload starts an upload with its first message (whose header fields
// are the upload's) and takes that message's bytes.
func newUpload(first *securedexchange.SendModelRequest, id string, limit int64, res *store.Reservation) (*upload, error) {
	declared := first.GetLength()
	if declared > uint64(limit) {
		return nil, errorf(codes.ResourceExhausted, "the upload declares %d bytes, over the server's model size limit of %d bytes (max_model_bytes)", declared, limit)
	}
	if err := res.Grow(int64(declared)); err != nil {
		return nil, modelRoomStatus(err)
	}
	u := &upload{first: first, id: id, limit: limit, declared: declared, res: res}
	if err := u.buf.Grow(int(declared)); err != nil {
		return nil, errorf(codes.ResourceExhausted, "no memory for a %d-byte model: %v", declared, err)
	}
	if err := u.add(first); err != nil {
		u.wipe()
		return nil, err
	}
	return u, nil
}

// add takes one more chunk.
func (u *upload) add(msg *securedexchange.SendModelRequest) error {
	if mid := msg.GetModelId(); mid != "" && mid != u.id && msg != u.first {
		return errorf(codes.InvalidArgument, "a later chunk names model id %q, but this upload's model id is %q (%s)", mid, u.id, u.idSource())
	}
	data := msg.GetData()
	if len(data) == 0 && msg != u.first {
		if u.empty++; u.empty > maxEmptyChunks {
			return errorf(codes.InvalidArgument, "more than %d chunks without model bytes; every chunk after the first must carry some", maxEmptyChunks)
		}
	}
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

// idSource says where the upload's id came from, for messages.
func (u *upload) idSource() string {
	switch {
	case u.first.GetModelId() != "":
		return "the first chunk's model_id"
	case u.first.GetModelName() != "":
		return "the first chunk's model_name"
	default:
		return "made by the server, as the first chunk named none"
	}
}

// finish returns the model bytes once the stream has ended. They are valid
// until wipe.
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
