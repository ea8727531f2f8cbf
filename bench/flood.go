package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/blindfold-ai/blindfold/client"
	"github.com/blindfold-ai/blindfold/tensor"
)

// floodEnv, when set in the environment, makes Main (and the package's
// TestMain) run tenant A's flood of the fairness section instead of the
// benchmark: its value is the JSON of floodConfig.
const floodEnv = "BLINDFOLD_BENCH_FLOOD"

// floodConfig is what the benchmark tells its flood process.
type floodConfig struct {
	Server  childReady `json:"server"`
	Token   string     `json:"token"`
	ModelID string     `json:"model_id"`
	Clients int        `json:"clients"`
	Batch   int        `json:"batch"`
	Width   int        `json:"width"`
	Factor  float32    `json:"factor"`
	// Nice is the nice value every thread of the flood process runs at.
	Nice int `json:"nice"`
}

// floodReport is the one JSON line the flood process prints when its
// standard input closes.
type floodReport struct {
	Runs         int    `json:"runs"`
	AnswersRight bool   `json:"answers_right"`
	Err          string `json:"err,omitempty"`
	// MinNice is the lowest nice value among the process's threads at
	// the end, which shows the whole flood ran at least that low in
	// priority.
	MinNice int `json:"min_nice"`
}

// floodChild runs tenant A's flood: Clients connections that run the
// model as fast as they can, each checking its answers, from a ready line
// on stdout until stdin closes; then it prints a floodReport.
func floodChild() int {
	var fc floodConfig
	if err := json.Unmarshal([]byte(os.Getenv(floodEnv)), &fc); err != nil {
		fmt.Fprintf(os.Stderr, "blindfold-bench flood: bad %s: %v\n", floodEnv, err)
		return 2
	}
	// Every thread the process has now gets the nice value; threads made
	// later inherit it from the thread that makes them.
	if err := setProcessNice(fc.Nice); err != nil {
		fmt.Fprintf(os.Stderr, "blindfold-bench flood: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clients := make([]*client.Client, fc.Clients)
	for i := range clients {
		c, err := connect(ctx, fc.Server, client.WithToken(fc.Token))
		if err != nil {
			fmt.Fprintf(os.Stderr, "blindfold-bench flood: %v\n", err)
			return 1
		}
		defer c.Close()
		clients[i] = c
	}
	in := scaledInput(fc.Batch, fc.Width)
	rep := floodReport{AnswersRight: true}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				out, err := c.Run(ctx, fc.ModelID, []tensor.Tensor{in})
				mu.Lock()
				switch {
				case ctx.Err() != nil:
				case err != nil:
					if rep.Err == "" {
						rep.Err = err.Error()
					}
					cancel()
				default:
					rep.Runs++
					rep.AnswersRight = rep.AnswersRight && checkScaled(in, out.Outputs, fc.Factor)
				}
				mu.Unlock()
			}
		}()
	}
	fmt.Println("flooding")
	_, _ = io.Copy(io.Discard, os.Stdin)
	cancel()
	wg.Wait()
	n, err := minThreadNice()
	if err != nil {
		rep.Err = err.Error()
	}
	rep.MinNice = n
	js, _ := json.Marshal(rep)
	fmt.Printf("%s\n", js)
	return 0
}

// setProcessNice sets the nice value of every thread of this process (on
// Linux, nice values belong to threads).
func setProcessNice(nice int) error {
	tids, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("listing threads: %w", err)
	}
	for _, t := range tids {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil {
			return fmt.Errorf("setting thread %d to nice %d: %w", tid, nice, err)
		}
	}
	return nil
}

// minThreadNice returns the lowest nice value among this process's
// threads, from field 19 of /proc/self/task/TID/stat.
func minThreadNice() (int, error) {
	stats, err := filepath.Glob("/proc/self/task/*/stat")
	if err != nil || len(stats) == 0 {
		return 0, fmt.Errorf("listing threads: %v", err)
	}
	low := 20
	for _, f := range stats {
		fields, err := procStat(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue // the thread ended
		}
		if err != nil {
			return 0, err
		}
		n, err := strconv.Atoi(fields[statNice])
		if err != nil {
			return 0, fmt.Errorf("%s: nice: %w", f, err)
		}
		low = min(low, n)
	}
	return low, nil
}

// floodProc is a running flood process.
type floodProc struct{ *childProc }

// startFlood starts tenant A's flood in its own process and returns once
// its clients are connected and running.
func startFlood(ctx context.Context, fc floodConfig) (*floodProc, error) {
	c, line, err := startChild(ctx, floodEnv, fc, "flood")
	if err != nil {
		return nil, err
	}
	if line != "flooding" {
		c.stop()
		return nil, fmt.Errorf("bench: the flood process printed %q", line)
	}
	return &floodProc{c}, nil
}

// finish stops the flood and returns its report.
func (f *floodProc) finish() (floodReport, error) {
	f.stdin.Close()
	var rep floodReport
	select {
	case line, ok := <-f.lines:
		if !ok {
			return rep, fmt.Errorf("bench: the flood process ended without a report: %s", strings.TrimSpace(f.stderr.String()))
		}
		if err := json.Unmarshal([]byte(line), &rep); err != nil {
			return rep, fmt.Errorf("bench: the flood process printed %q: %w", line, err)
		}
	case <-time.After(30 * time.Second):
		_ = f.stop()
		return rep, fmt.Errorf("bench: the flood process did not report within 30s")
	}
	if err := f.stop(); err != nil {
		return rep, err
	}
	if rep.Err != "" {
		return rep, fmt.Errorf("bench: fairness: tenant A: %s", rep.Err)
	}
	return rep, nil
}
