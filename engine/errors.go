package engine

import (
	"errors"
	"regexp"
	"strings"
)

// Error is an engine failure that carries ONNX Runtime's own message.
// ONNX Runtime's text can name host files and their sizes, the library's
// source paths and the memory left to other models, so it is kept apart
// from what a client may see: Error returns everything (for the server's
// log); Reason is safe to show to whoever sent the model or the inputs.
type Error struct {
	// Err is the sentinel: ErrInvalidModel, ErrRun or ErrMemoryLimit.
	Err error
	// Reason explains the failure without host details.
	Reason string
	// Cause is ONNX Runtime's error, in full.
	Cause error
}

// Error returns the sentinel's text and ONNX Runtime's full message.
func (e *Error) Error() string { return e.Err.Error() + ": " + e.Cause.Error() }

// Unwrap returns the sentinel and ONNX Runtime's error.
func (e *Error) Unwrap() []error { return []error{e.Err, e.Cause} }

// Reason returns a description of err that is safe to show a client: for
// an *Error in err's chain, its sentinel's text and its Reason; otherwise
// err's own text, which the engine builds only from the model's own names
// and the inputs' shapes.
func Reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Err.Error() + ": " + e.Reason
	}
	return err.Error()
}

// ortError wraps an ONNX Runtime error under sentinel with a client-safe
// reason.
func ortError(sentinel, cause error) *Error {
	return &Error{Err: sentinel, Reason: publicReason(cause.Error()), Cause: cause}
}

var (
	// ortStatus finds ONNX Runtime's status prefix, such as
	// "[ONNXRuntimeError] : 1 : FAIL : ".
	ortStatus = regexp.MustCompile(`\[ONNXRuntimeError\] : \d+ : ([A-Z_]+) : `)
	// sourceLocation matches a source file and line of ONNX Runtime's
	// build, such as "/onnxruntime_src/onnxruntime/core/graph/graph.cc:123".
	sourceLocation = regexp.MustCompile(`\S*\.(?:cc|cpp|cxx|c|h|hpp):\d+\s*`)
)

// hostWords mark an ONNX Runtime message that may describe the host: its
// files (names, existence, sizes) or its memory. Such messages reach the
// client as ONNX Runtime's status code only.
var hostWords = []string{
	"file", "path", "director", "folder", "external", "location", "exist",
	"errno", "no such", "permission", "mmap", "map view", "offset", "length", "/proc", "/dev", "/etc",
	"memory", "alloc", "arena", "bytes",
}

// maxReason bounds the ONNX Runtime text a client is shown.
const maxReason = 400

// publicReason turns ONNX Runtime's message into one without host details.
func publicReason(msg string) string {
	code := "FAIL"
	if m := ortStatus.FindStringSubmatchIndex(msg); m != nil {
		code = msg[m[2]:m[3]]
		msg = msg[m[1]:]
	}
	lower := strings.ToLower(msg)
	for _, w := range hostWords {
		if strings.Contains(lower, w) {
			return "ONNX Runtime refused it (" + code + "); its full message is in the server's log"
		}
	}
	msg = strings.TrimSpace(sourceLocation.ReplaceAllString(msg, ""))
	if len(msg) > maxReason {
		msg = strings.ToValidUTF8(msg[:maxReason], "") + "..."
	}
	if msg == "" {
		return "ONNX Runtime refused it (" + code + ")"
	}
	return msg
}
