package imagegen

import (
	"context"
	"log/slog"
)

// hookList is the Client's registered hooks. Its methods call every hook
// set for an event, in order, and recover a panicking hook.
type hookList []Hooks

func (hs hookList) attemptStart(ctx context.Context, l *slog.Logger, e AttemptStartEvent) {
	for i := range hs {
		if f := hs[i].AttemptStart; f != nil {
			callHook(ctx, l, "AttemptStart", func() { f(ctx, e) })
		}
	}
}

func (hs hookList) attemptEnd(ctx context.Context, l *slog.Logger, e AttemptEndEvent) {
	for i := range hs {
		if f := hs[i].AttemptEnd; f != nil {
			callHook(ctx, l, "AttemptEnd", func() { f(ctx, e) })
		}
	}
}

func (hs hookList) retry(ctx context.Context, l *slog.Logger, e RetryEvent) {
	for i := range hs {
		if f := hs[i].Retry; f != nil {
			callHook(ctx, l, "Retry", func() { f(ctx, e) })
		}
	}
}

func (hs hookList) fallback(ctx context.Context, l *slog.Logger, e FallbackEvent) {
	for i := range hs {
		if f := hs[i].Fallback; f != nil {
			callHook(ctx, l, "Fallback", func() { f(ctx, e) })
		}
	}
}

func (hs hookList) done(ctx context.Context, l *slog.Logger, e DoneEvent) {
	for i := range hs {
		if f := hs[i].Done; f != nil {
			callHook(ctx, l, "Done", func() { f(ctx, e) })
		}
	}
}

// callHook runs f and logs, instead of propagating, a panic.
func callHook(ctx context.Context, l *slog.Logger, name string, f func()) {
	defer func() {
		if r := recover(); r != nil {
			l.LogAttrs(ctx, slog.LevelError, "imagegen: hook panicked", slog.String("hook", name), slog.Any("panic", r))
		}
	}()
	f()
}
