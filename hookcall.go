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

func (hs hookList) attemptStart(ctx context.Context, logger *slog.Logger, e AttemptStartEvent) {
	for i := range hs {
		if f := hs[i].AttemptStart; f != nil {
			runHookRecovered(ctx, logger, "AttemptStart", i, func() { f(ctx, e) })
		}
	}
}

func (hs hookList) attemptEnd(ctx context.Context, logger *slog.Logger, e AttemptEndEvent) {
	for i := range hs {
		if f := hs[i].AttemptEnd; f != nil {
			runHookRecovered(ctx, logger, "AttemptEnd", i, func() { f(ctx, e) })
		}
	}
}

func (hs hookList) retry(ctx context.Context, logger *slog.Logger, e RetryEvent) {
	for i := range hs {
		if f := hs[i].Retry; f != nil {
			runHookRecovered(ctx, logger, "Retry", i, func() { f(ctx, e) })
		}
	}
}

func (hs hookList) fallback(ctx context.Context, logger *slog.Logger, e FallbackEvent) {
	for i := range hs {
		if f := hs[i].Fallback; f != nil {
			runHookRecovered(ctx, logger, "Fallback", i, func() { f(ctx, e) })
		}
	}
}

func (hs hookList) rateLimitWait(ctx context.Context, logger *slog.Logger, e RateLimitWaitEvent) {
	for i := range hs {
		if f := hs[i].RateLimitWait; f != nil {
			runHookRecovered(ctx, logger, "RateLimitWait", i, func() { f(ctx, e) })
		}
	}
}

func (hs hookList) breakerChange(ctx context.Context, logger *slog.Logger, e BreakerEvent) {
	for i := range hs {
		if f := hs[i].BreakerChange; f != nil {
			runHookRecovered(ctx, logger, "BreakerChange", i, func() { f(ctx, e) })
		}
	}
}

func (hs hookList) cacheHit(ctx context.Context, logger *slog.Logger, e CacheEvent) {
	for i := range hs {
		if f := hs[i].CacheHit; f != nil {
			runHookRecovered(ctx, logger, "CacheHit", i, func() { f(ctx, e) })
		}
	}
}

func (hs hookList) cacheMiss(ctx context.Context, logger *slog.Logger, e CacheEvent) {
	for i := range hs {
		if f := hs[i].CacheMiss; f != nil {
			runHookRecovered(ctx, logger, "CacheMiss", i, func() { f(ctx, e) })
		}
	}
}

func (hs hookList) cacheError(ctx context.Context, logger *slog.Logger, e CacheEvent) {
	for i := range hs {
		if f := hs[i].CacheError; f != nil {
			runHookRecovered(ctx, logger, "CacheError", i, func() { f(ctx, e) })
		}
	}
}

func (hs hookList) done(ctx context.Context, logger *slog.Logger, e DoneEvent) {
	for i := range hs {
		if f := hs[i].Done; f != nil {
			runHookRecovered(ctx, logger, "Done", i, func() { f(ctx, e) })
		}
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
