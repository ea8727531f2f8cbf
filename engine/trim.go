package engine

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>

typedef int (*blindfold_trim_fn)(size_t);

static blindfold_trim_fn blindfold_trim_lookup(void) {
	return (blindfold_trim_fn)dlsym(RTLD_DEFAULT, "malloc_trim");
}

static int blindfold_trim(blindfold_trim_fn f) {
	return f ? f(0) : 0;
}
*/
import "C"

import "sync"

// mallocTrim is the C library's malloc_trim, or nil where there is none
// (it is a glibc extension).
var mallocTrim = sync.OnceValue(func() C.blindfold_trim_fn { return C.blindfold_trim_lookup() })

// releaseMemory hands the C heap's free memory back to the system.
// Loading a model makes many small allocations inside ONNX Runtime (graph
// nodes, names, kernel objects); once the session is gone the C library
// keeps the pages they were in, so without this a stream of uploads and
// deletes of many-node models grows the process for good. It is a no-op
// where the C library has no malloc_trim.
func releaseMemory() {
	if f := mallocTrim(); f != nil {
		C.blindfold_trim(f)
	}
}
