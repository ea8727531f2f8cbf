package engine

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
)

// arenaExtendSameAsRequested makes the arena grow by exactly what an
// allocation needs (ONNX Runtime's kSameAsRequested), so that the cap is
// reached only by real demand, not by power-of-two rounding.
const arenaExtendSameAsRequested = 1

// registerLimitedAllocator registers, for the whole environment, a CPU
// arena allocator capped at limit bytes. Sessions created with
// "session.use_env_allocators" take their memory from it; an allocation
// past the cap fails inside ONNX Runtime and surfaces as a load or run
// error. Memory ONNX Runtime takes outside its allocators (thread stacks,
// small internal buffers, the library itself) is not counted.
func registerLimitedAllocator(limit int64) error {
	cfg, err := ort.NewArenaCfg(int(limit), arenaExtendSameAsRequested, -1, -1)
	if err != nil {
		return fmt.Errorf("engine: configuring the memory limit: %w", err)
	}
	defer cfg.Destroy()
	info, err := ort.GetMemoryInfo()
	if err != nil {
		return fmt.Errorf("engine: configuring the memory limit: %w", err)
	}
	if err := ort.CreateAndRegisterAllocator(info, cfg); err != nil {
		return fmt.Errorf("engine: registering the capped allocator: %w", err)
	}
	return nil
}

// isAllocationFailure reports whether an ONNX Runtime error is a failed
// allocation. The C API reports it as a plain failure status, so the
// message is the only sign.
func isAllocationFailure(err error) bool {
	msg := err.Error()
	for _, sign := range []string{"Failed to allocate memory", "BFCArena", "bad_alloc", "Available memory of"} {
		if strings.Contains(msg, sign) {
			return true
		}
	}
	return false
}

// MachineMemory returns the machine's memory in bytes (MemTotal from
// /proc/meminfo), or 0 where it cannot be read.
func MachineMemory() int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil || kb <= 0 {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// totalMemory returns MachineMemory, or 1 TiB where it cannot be read.
// Output buffers larger than the machine would end the process (the Go
// runtime cannot recover from running out of memory), so with no cap
// configured this is the cap.
func totalMemory() int64 {
	if n := MachineMemory(); n > 0 {
		return n
	}
	return 1 << 40
}
