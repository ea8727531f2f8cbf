package server

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
)

// maxEmptyChunks is how many chunks without data one stream may send: a
// SendModel chunk without model bytes, or a RunModel message or tensor
// chunk without tensor bytes (an empty tensor's one chunk is not counted).
// Real clients send none or one; a flood of them costs the server work for
// nothing.
const maxEmptyChunks = 64

// progressReader receives a client stream's messages with a progress
// timeout: when no message arrives for timeout, next fails with
// DEADLINE_EXCEEDED and the handler returns, which ends the stream and
// releases everything the request held. gRPC's Recv cannot be given a
// deadline of its own, so one goroutine per stream receives and hands the
// messages over.
type progressReader[T any] struct {
	ctx     context.Context
	recv    func() (T, error)
	timeout time.Duration
	what    string // "upload" or "request", for the message

	once     sync.Once
	stopOnce sync.Once
	ch       chan received[T]
	done     chan struct{}
	timer    *time.Timer
}

type received[T any] struct {
	msg T
	err error
}

// newProgressReader reads with recv (a stream's Recv). timeout 0 means
// none: next calls recv directly. Call stop when the handler returns.
func newProgressReader[T any](ctx context.Context, recv func() (T, error), timeout time.Duration, what string) *progressReader[T] {
	return &progressReader[T]{ctx: ctx, recv: recv, timeout: timeout, what: what}
}

// next returns the stream's next message, io.EOF at its end, or an error.
func (p *progressReader[T]) next() (T, error) {
	if p.timeout <= 0 {
		return p.recv()
	}
	p.once.Do(p.start)
	p.timer.Reset(p.timeout)
	defer p.timer.Stop()
	select {
	case r := <-p.ch:
		return r.msg, r.err
	case <-p.timer.C:
		var zero T
		return zero, errorf(codes.DeadlineExceeded, "no data arrived for %s (stream_progress_timeout); the %s was cancelled", p.timeout, p.what)
	case <-p.ctx.Done():
		var zero T
		return zero, contextStatus(p.ctx.Err())
	}
}

func (p *progressReader[T]) start() {
	p.ch = make(chan received[T])
	p.done = make(chan struct{})
	p.timer = time.NewTimer(p.timeout)
	go func() {
		for {
			msg, err := p.recv()
			select {
			case p.ch <- received[T]{msg, err}:
			case <-p.done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
}

// stop ends the receiving goroutine once the handler has returned (its
// Recv then fails, as the stream is over).
func (p *progressReader[T]) stop() {
	p.stopOnce.Do(func() {
		if p.done != nil {
			close(p.done)
		}
	})
}

// byteBudget is a server-wide cap on bytes held by requests in progress.
type byteBudget struct {
	mu   sync.Mutex
	used int64
	max  int64
}

// take reserves n bytes, or reports false (taking nothing) when the cap
// would be passed.
func (b *byteBudget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n < 0 || n > b.max-b.used {
		return false
	}
	b.used += n
	return true
}

// give returns n bytes taken before.
func (b *byteBudget) give(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// inUse returns the bytes taken.
func (b *byteBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
