package engine

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// The binding does not expose ONNX Runtime's global thread pools, so the
// engine calls the few C API functions it needs itself. OrtApi is a table
// of function pointers whose order ONNX Runtime keeps stable across
// releases (new functions are only appended), so each function is found by
// its index in the table (the indices are those of onnxruntime_c_api.h).
enum {
	blindfold_api_version = 24, // the binding's ORT_API_VERSION
	idx_GetErrorMessage = 2,
	idx_ReleaseStatus = 93,
	idx_CreateEnvWithGlobalThreadPools = 119,
	idx_DisablePerSessionThreads = 120,
	idx_CreateThreadingOptions = 121,
	idx_ReleaseThreadingOptions = 122,
	idx_SetGlobalIntraOpNumThreads = 147,
	idx_SetGlobalInterOpNumThreads = 148,
	idx_SetGlobalSpinControl = 149,
};

typedef void *(*blindfold_get_api_fn)(uint32_t);
typedef void *(*blindfold_get_api_base_fn)(void);
typedef void *(*blindfold_status_fn0)(void **);
typedef void *(*blindfold_status_fn_ptr)(void *);
typedef void *(*blindfold_status_fn_int)(void *, int);
typedef void *(*blindfold_create_env_fn)(int, const char *, const void *, void **);
typedef const char *(*blindfold_msg_fn)(const void *);
typedef void (*blindfold_release_fn)(void *);

static void **blindfold_api;

// blindfold_ort_api finds the OrtApi table of the library at path.
static const char *blindfold_ort_api(const char *path) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) return "cannot open the ONNX Runtime library";
	blindfold_get_api_base_fn base_fn = (blindfold_get_api_base_fn)dlsym(h, "OrtGetApiBase");
	if (!base_fn) return "the library has no OrtGetApiBase";
	void **base = (void **)base_fn();
	if (!base) return "OrtGetApiBase returned nothing";
	blindfold_api = (void **)((blindfold_get_api_fn)base[0])(blindfold_api_version);
	if (!blindfold_api) return "the library does not support the C API version the binding needs";
	return NULL;
}

// blindfold_status turns a status into a copied message (NULL: success).
static char *blindfold_status(void *st) {
	if (!st) return NULL;
	const char *msg = ((blindfold_msg_fn)blindfold_api[idx_GetErrorMessage])(st);
	char *out = msg ? strdup(msg) : strdup("unknown ONNX Runtime error");
	((blindfold_release_fn)blindfold_api[idx_ReleaseStatus])(st);
	return out;
}

// blindfold_global_env creates the process's ONNX Runtime environment
// with global thread pools. ONNX Runtime keeps one environment per
// process, so the binding's own CreateEnv later returns this one.
static char *blindfold_global_env(int intra, int inter, int spin) {
	void *opts = NULL;
	char *err = blindfold_status(((blindfold_status_fn0)blindfold_api[idx_CreateThreadingOptions])(&opts));
	if (err) return err;
	err = blindfold_status(((blindfold_status_fn_int)blindfold_api[idx_SetGlobalIntraOpNumThreads])(opts, intra));
	if (!err) err = blindfold_status(((blindfold_status_fn_int)blindfold_api[idx_SetGlobalInterOpNumThreads])(opts, inter));
	if (!err) err = blindfold_status(((blindfold_status_fn_int)blindfold_api[idx_SetGlobalSpinControl])(opts, spin));
	void *env = NULL;
	if (!err) err = blindfold_status(((blindfold_create_env_fn)blindfold_api[idx_CreateEnvWithGlobalThreadPools])(3, "blindfold", opts, &env));
	((blindfold_release_fn)blindfold_api[idx_ReleaseThreadingOptions])(opts);
	// env is kept for the life of the process: releasing it would let the
	// binding's environment be the last reference.
	return err;
}

static char *blindfold_disable_per_session_threads(void *so) {
	return blindfold_status(((blindfold_status_fn_ptr)blindfold_api[idx_DisablePerSessionThreads])(so));
}
*/
import "C"

import (
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"
)

// cError turns a message from the C helpers into an error (nil for NULL)
// and frees it.
func cError(msg *C.char) error {
	if msg == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(msg))
	return errors.New(C.GoString(msg))
}

// createGlobalThreadPools creates the process's ONNX Runtime environment
// with one intra-op and one inter-op thread pool that every session shares
// (0 threads: ONNX Runtime's default, one per core). It must run before the
// binding initialises its environment, which then shares this one.
func createGlobalThreadPools(path string, intra, inter int, spin bool) error {
	if err := checkSessionOptionsLayout(); err != nil {
		return err
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	if msg := C.blindfold_ort_api(cpath); msg != nil {
		return fmt.Errorf("engine: %s (%s)", C.GoString(msg), path)
	}
	s := 0
	if spin {
		s = 1
	}
	if err := cError(C.blindfold_global_env(C.int(intra), C.int(inter), C.int(s))); err != nil {
		return fmt.Errorf("engine: creating the shared thread pools: %w", err)
	}
	return nil
}

// checkSessionOptionsLayout checks that the binding's SessionOptions is
// still one pointer to the C OrtSessionOptions, the layout that
// useGlobalThreads relies on.
func checkSessionOptionsLayout() error {
	t := reflect.TypeOf(ort.SessionOptions{})
	if t.NumField() != 1 || t.Field(0).Type.Kind() != reflect.Pointer || t.Size() != unsafe.Sizeof(uintptr(0)) {
		return errors.New("engine: the ONNX Runtime binding's SessionOptions changed layout; the shared thread pools cannot be used")
	}
	return nil
}

// useGlobalThreads makes a session created with so run on the shared
// thread pools instead of creating its own. The binding keeps the C
// options pointer unexported, so it is read through the layout that
// checkSessionOptionsLayout verified when the environment was made.
func useGlobalThreads(so *ort.SessionOptions) error {
	p := *(*unsafe.Pointer)(unsafe.Pointer(so))
	if p == nil {
		return errors.New("engine: session options are not initialised")
	}
	if err := cError(C.blindfold_disable_per_session_threads(p)); err != nil {
		return fmt.Errorf("engine: using the shared thread pools: %w", err)
	}
	return nil
}
