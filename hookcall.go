package imagegen

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
)

// hookList is the Hooks registered on a Client, in registration order. Each
// method runs one event's callbacks in that order, skipping nil fields. A
// callback that panics is recovered and logged, and the next one still
// runs. With no hooks registered a method costs a length check. The methods
// take no lock; the Client must not hold one when it calls them.
type hookList []Hooks

// dispatch runs the callback that field selects from each registered Hooks,
// in registration order, skipping nil ones and recovering panics.
func dispatch[E any](ctx context.Context, logger *slog.Logger, hs hookList, name string, field func(*Hooks) func(context.Context, E), e E) {
	for i := range hs {
		if f := field(&hs[i]); f != nil {
			runHookRecovered(ctx, logger, name, i, func() { f(ctx, e) })
		}
	}
}

func (hs hookList) attemptStart(ctx context.Context, logger *slog.Logger, e AttemptStartEvent) {
	if len(hs) > 0 {
		dispatch(ctx, logger, hs, "AttemptStart", func(h *Hooks) func(context.Context, AttemptStartEvent) { return h.AttemptStart }, e)
	}
}

func (hs hookList) attemptEnd(ctx context.Context, logger *slog.Logger, e AttemptEndEvent) {
	if len(hs) > 0 {
		dispatch(ctx, logger, hs, "AttemptEnd", func(h *Hooks) func(context.Context, AttemptEndEvent) { return h.AttemptEnd }, e)
	}
}

func (hs hookList) retry(ctx context.Context, logger *slog.Logger, e RetryEvent) {
	if len(hs) > 0 {
		dispatch(ctx, logger, hs, "Retry", func(h *Hooks) func(context.Context, RetryEvent) { return h.Retry }, e)
	}
}

func (hs hookList) fallback(ctx context.Context, logger *slog.Logger, e FallbackEvent) {
	if len(hs) > 0 {
		dispatch(ctx, logger, hs, "Fallback", func(h *Hooks) func(context.Context, FallbackEvent) { return h.Fallback }, e)
	}
}

func (hs hookList) rateLimitWait(ctx context.Context, logger *slog.Logger, e RateLimitWaitEvent) {
	if len(hs) > 0 {
		dispatch(ctx, logger, hs, "RateLimitWait", func(h *Hooks) func(context.Context, RateLimitWaitEvent) { return h.RateLimitWait }, e)
	}
}

func (hs hookList) breakerChange(ctx context.Context, logger *slog.Logger, e BreakerEvent) {
	if len(hs) > 0 {
		dispatch(ctx, logger, hs, "BreakerChange", func(h *Hooks) func(context.Context, BreakerEvent) { return h.BreakerChange }, e)
	}
}

func (hs hookList) cacheHit(ctx context.Context, logger *slog.Logger, e CacheEvent) {
	if len(hs) > 0 {
		dispatch(ctx, logger, hs, "CacheHit", func(h *Hooks) func(context.Context, CacheEvent) { return h.CacheHit }, e)
	}
}

func (hs hookList) cacheMiss(ctx context.Context, logger *slog.Logger, e CacheEvent) {
	if len(hs) > 0 {
		dispatch(ctx, logger, hs, "CacheMiss", func(h *Hooks) func(context.Context, CacheEvent) { return h.CacheMiss }, e)
	}
}

func (hs hookList) cacheError(ctx context.Context, logger *slog.Logger, e CacheEvent) {
	if len(hs) > 0 {
		dispatch(ctx, logger, hs, "CacheError", func(h *Hooks) func(context.Context, CacheEvent) { return h.CacheError }, e)
	}
}

func (hs hookList) done(ctx context.Context, logger *slog.Logger, e DoneEvent) {
	if len(hs) > 0 {
		dispatch(ctx, logger, hs, "Done", func(h *Hooks) func(context.Context, DoneEvent) { return h.Done }, e)
	}
}

// runHookRecovered runs call and recovers a panic in it. call does not
// escape, so the closures above stay on the stack and allocate nothing.
func runHookRecovered(ctx context.Context, logger *slog.Logger, name string, index int, call func()) {
	defer recoverHookPanic(ctx, logger, name, index)
	call()
}

// recoverHookPanic logs a recovered hook panic at Error level with the
// hook's field name, its position among the registered Hooks, the panic
// value with anything that looks like an API key redacted, and the stack.
// Events carry no prompt, so none can reach the log from here.
func recoverHookPanic(ctx context.Context, logger *slog.Logger, name string, index int) {
	v := recover()
	if v == nil || logger == nil {
		return
	}
	logger.ErrorContext(ctx, "imagegen: hook panicked, continuing the call",
		slog.String("hook", name),
		slog.Int("hooks_index", index),
		slog.String("panic", Redact(fmt.Sprint(v))),
		slog.String("stack", string(debug.Stack())))
}
