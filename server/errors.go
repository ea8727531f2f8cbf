package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/blindfold-ai/blindfold/engine"
)

// errorf returns a gRPC status error with a formatted message.
func errorf(c codes.Code, format string, args ...any) error {
	return status.Error(c, fmt.Sprintf(format, args...))
}

// contextStatus maps a context error to its gRPC status, or returns nil.
func contextStatus(err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "the request's deadline passed before it finished")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "the request was cancelled")
	}
	return nil
}

// recoverUnary turns a panic in a handler into INTERNAL so that one bad
// request never takes the server down. The panic value and stack are
// logged; request data is not.
func (s *Server) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in handler", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = status.Error(codes.Internal, "internal error; the server logged it")
		}
	}()
	return h(ctx, req)
}

func (s *Server) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in handler", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = status.Error(codes.Internal, "internal error; the server logged it")
		}
	}()
	return h(srv, ss)
}

// engineStatus says how one engine sentinel error reaches a client.
type engineStatus struct {
	// err is the engine's sentinel (see engine.Errors).
	err error
	// code is the gRPC status code.
	code codes.Code
	// msg begins the client's message. Unless private, engine.Reason
	// follows it: the engine's explanation without host details.
	msg string
	// suffix ends the client's message.
	suffix string
	// private hides the engine's text from the client; the server logs it.
	private bool
}

// engineStatuses maps every engine sentinel to a deliberate status. The
// first entry whose err the error wraps wins, so an error that wraps two
// sentinels (ErrMemoryLimit comes with ErrRun) is listed before the other.
// A test fails when an engine sentinel is missing here: a new one needs an
// entry.
var engineStatuses = []engineStatus{
	{err: engine.ErrOutputTooLarge, code: codes.ResourceExhausted,
		msg: "the model's outputs for these inputs are too large for this server", suffix: " (max_reply_bytes, engine_memory_limit)"},
	{err: engine.ErrMemoryLimit, code: codes.ResourceExhausted, private: true,
		msg: "the model needs more memory for these inputs than the server allows (engine_memory_limit)"},
	{err: engine.ErrExternalData, code: codes.InvalidArgument,
		msg: "the model is refused"},
	{err: engine.ErrTooManyNodes, code: codes.ResourceExhausted,
		msg: "the model is refused", suffix: " (max_model_nodes)"},
	{err: engine.ErrTooManyInitializers, code: codes.ResourceExhausted,
		msg: "the model is refused", suffix: " (max_model_initializers)"},
	{err: engine.ErrNoInputs, code: codes.InvalidArgument, private: true,
		msg: "the model has no inputs; Blindfold serves models that take at least one input"},
	{err: engine.ErrUnsupportedType, code: codes.InvalidArgument,
		msg: "the model uses a type Blindfold cannot serve", suffix: " (allowed element types: " + dtypeNames() + ")"},
	{err: engine.ErrUnsupportedModel, code: codes.InvalidArgument,
		msg: "the model uses a tensor type in a way Blindfold cannot serve"},
	{err: engine.ErrInvalidModel, code: codes.InvalidArgument,
		msg: "the upload is not a valid ONNX model"},
	{err: engine.ErrInvalidInput, code: codes.InvalidArgument,
		msg: "the inputs do not fit the model"},
	{err: engine.ErrRun, code: codes.InvalidArgument,
		msg: "the model failed on these inputs"},
	{err: engine.ErrClosed, code: codes.NotFound, private: true,
		msg: "the model was deleted before this run started"},
	{err: engine.ErrLibraryNotFound, code: codes.Internal, private: true,
		msg: "the server's inference engine is not available; the server logged why"},
}

// engineError maps an engine error to its status through engineStatuses.
// An error that wraps no engine sentinel is INTERNAL, with nothing of its
// text. The full error goes to the log whenever the client is not shown
// all of it: load errors at warn level; run errors (ErrRun), whose ONNX
// Runtime text can quote input values (a Reshape's target shape, a Gather
// index), only at debug level, which a measured configuration under SGX
// does not enable.
func (s *Server) engineError(err error, modelID string) error {
	for _, e := range engineStatuses {
		if !errors.Is(err, e.err) {
			continue
		}
		var detail *engine.Error
		if e.private || errors.As(err, &detail) {
			level := slog.LevelWarn
			if errors.Is(err, engine.ErrRun) {
				level = slog.LevelDebug
			}
			s.log.Log(context.Background(), level, "engine error", "model_id", modelID, "code", e.code.String(), "err", err)
		}
		if e.private {
			return status.Error(e.code, e.msg)
		}
		return status.Error(e.code, e.msg+": "+engine.Reason(err)+e.suffix)
	}
	s.log.Error("unexpected engine error", "model_id", modelID, "err", err)
	return status.Error(codes.Internal, "internal error in the inference engine; the server logged it")
}

// runStatus maps an engine Run error to a status: the request's own end
// first (deadline, cancellation), then engineStatuses.
func (s *Server) runStatus(ctx context.Context, modelID string, err error) error {
	if st := contextStatus(ctx.Err()); st != nil {
		return st
	}
	if st := contextStatus(err); st != nil {
		return st
	}
	return s.engineError(err, modelID)
}
