package imagegen

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// flightGroup merges concurrent calls with the same key into one call of fn,
// so that identical requests that arrive together reach the provider once.
// The zero value is ready to use and safe for concurrent use.
//
// Unlike golang.org/x/sync/singleflight, the shared call does not run on the
// first caller's context but on a copy without its cancellation, so one
// caller leaving does not fail the others. Each caller waits only as long as
// its own context allows.
type flightGroup[T any] struct {
	mu    sync.Mutex
	calls map[string]*flightCall[T]
}

// flightCall is one running shared call. val and err are written once,
// before done is closed, and only read after.
type flightCall[T any] struct {
	done chan struct{}
	val  T
	err  error
}

// Do runs fn once for all the concurrent calls with the same key and returns
// its result to each of them. A call with a key that no call is running for
// starts fn in a new goroutine. Calls with that key that arrive before fn
// returns join it and get the same result. Once fn returns, the next call
// with the key starts fn again: results are not remembered.
//
// fn runs on context.WithoutCancel(ctx) of the call that started it, so it
// keeps that call's values but not its cancellation, with its own deadline of
// timeout when timeout is positive. A timeout of zero or less means no
// deadline, so fn must then return by itself. fn runs to completion even when
// every caller has left, so that its result can still be stored in a cache.
//
// Each caller waits until fn returns or its own ctx is done, whichever comes
// first, and in the second case returns ctx.Err() without affecting fn or the
// other callers. A ctx that is already done returns ctx.Err() at once and
// starts or joins nothing.
//
// shared reports whether the caller joined a call that another caller had
// started, which means that it caused no call of its own.
//
// Every caller receives the same val. When T is a pointer, or holds slices or
// maps, the callers share that memory and must treat val as read-only.
//
// A panic in fn is recovered and returned to every caller as an error with the
// panic value and stack, because it happens on a goroutine that no caller
// could recover on.
func (g *flightGroup[T]) Do(ctx context.Context, key string, timeout time.Duration, fn func(ctx context.Context) (T, error)) (val T, shared bool, err error) {
	if err := ctx.Err(); err != nil {
		return val, false, err
	}

	g.mu.Lock()
	call, shared := g.calls[key]
	if !shared {
		if g.calls == nil {
			g.calls = make(map[string]*flightCall[T])
		}
		call = &flightCall[T]{done: make(chan struct{})}
		g.calls[key] = call
		go g.run(ctx, key, timeout, call, fn)
	}
	g.mu.Unlock()

	select {
	case <-call.done:
		return call.val, shared, call.err
	case <-ctx.Done():
		var zero T
		return zero, shared, ctx.Err()
	}
}

func (g *flightGroup[T]) run(ctx context.Context, key string, timeout time.Duration, call *flightCall[T], fn func(ctx context.Context) (T, error)) {
	runCtx := context.WithoutCancel(ctx)
	if timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(runCtx, timeout)
		defer cancel()
	}

	defer func() {
		if p := recover(); p != nil {
			call.err = fmt.Errorf("imagegen: shared call for a request panicked: %v\n%s", p, debug.Stack())
		}
		g.mu.Lock()
		delete(g.calls, key)
		g.mu.Unlock()
		close(call.done)
	}()

	call.val, call.err = fn(runCtx)
}
