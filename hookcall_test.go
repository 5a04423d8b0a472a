package imagegen

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hookCase runs one hookList method and sets one Hooks field.
type hookCase struct {
	name     string
	set      func(h *Hooks, f func())
	dispatch func(hs hookList, ctx context.Context, logger *slog.Logger)
}

var hookCases = []hookCase{
	{"AttemptStart",
		func(h *Hooks, f func()) { h.AttemptStart = func(context.Context, AttemptStartEvent) { f() } },
		func(hs hookList, ctx context.Context, l *slog.Logger) { hs.attemptStart(ctx, l, AttemptStartEvent{}) }},
	{"AttemptEnd",
		func(h *Hooks, f func()) { h.AttemptEnd = func(context.Context, AttemptEndEvent) { f() } },
		func(hs hookList, ctx context.Context, l *slog.Logger) { hs.attemptEnd(ctx, l, AttemptEndEvent{}) }},
	{"Retry",
		func(h *Hooks, f func()) { h.Retry = func(context.Context, RetryEvent) { f() } },
		func(hs hookList, ctx context.Context, l *slog.Logger) { hs.retry(ctx, l, RetryEvent{}) }},
	{"Fallback",
		func(h *Hooks, f func()) { h.Fallback = func(context.Context, FallbackEvent) { f() } },
		func(hs hookList, ctx context.Context, l *slog.Logger) { hs.fallback(ctx, l, FallbackEvent{}) }},
	{"RateLimitWait",
		func(h *Hooks, f func()) { h.RateLimitWait = func(context.Context, RateLimitWaitEvent) { f() } },
		func(hs hookList, ctx context.Context, l *slog.Logger) { hs.rateLimitWait(ctx, l, RateLimitWaitEvent{}) }},
	{"BreakerChange",
		func(h *Hooks, f func()) { h.BreakerChange = func(context.Context, BreakerEvent) { f() } },
		func(hs hookList, ctx context.Context, l *slog.Logger) { hs.breakerChange(ctx, l, BreakerEvent{}) }},
	{"CacheHit",
		func(h *Hooks, f func()) { h.CacheHit = func(context.Context, CacheEvent) { f() } },
		func(hs hookList, ctx context.Context, l *slog.Logger) { hs.cacheHit(ctx, l, CacheEvent{}) }},
	{"CacheMiss",
		func(h *Hooks, f func()) { h.CacheMiss = func(context.Context, CacheEvent) { f() } },
		func(hs hookList, ctx context.Context, l *slog.Logger) { hs.cacheMiss(ctx, l, CacheEvent{}) }},
	{"CacheError",
		func(h *Hooks, f func()) { h.CacheError = func(context.Context, CacheEvent) { f() } },
		func(hs hookList, ctx context.Context, l *slog.Logger) { hs.cacheError(ctx, l, CacheEvent{}) }},
	{"Done",
		func(h *Hooks, f func()) { h.Done = func(context.Context, DoneEvent) { f() } },
		func(hs hookList, ctx context.Context, l *slog.Logger) { hs.done(ctx, l, DoneEvent{}) }},
}

func TestHookListRunsOnlyItsField(t *testing.T) {
	for _, tc := range hookCases {
		t.Run(tc.name, func(t *testing.T) {
			var calls []string
			hs := make(hookList, len(hookCases))
			for i, other := range hookCases {
				name := other.name
				other.set(&hs[i], func() { calls = append(calls, name) })
			}

			tc.dispatch(hs, t.Context(), nil)

			assert.Equal(t, []string{tc.name}, calls)
		})
	}
}

func TestHookListRecoversPanic(t *testing.T) {
	for _, tc := range hookCases {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, nil))
			var order []int
			hs := make(hookList, 4)
			tc.set(&hs[0], func() { order = append(order, 0) })
			tc.set(&hs[1], func() { order = append(order, 1); panic("hook bug sk-abcdefghijklmnop") })
			// hs[2] has no callback for this event and is skipped.
			tc.set(&hs[3], func() { order = append(order, 3) })

			require.NotPanics(t, func() { tc.dispatch(hs, t.Context(), logger) })

			assert.Equal(t, []int{0, 1, 3}, order, "hooks after the panicking one still run")
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			require.Len(t, lines, 1)
			var rec map[string]any
			require.NoError(t, json.Unmarshal([]byte(lines[0]), &rec))
			assert.Equal(t, "ERROR", rec["level"])
			assert.Equal(t, tc.name, rec["hook"])
			assert.Equal(t, 1.0, rec["hooks_index"])
			assert.Equal(t, "hook bug [REDACTED]", rec["panic"], "the panic value is logged with keys redacted")
			assert.Contains(t, rec["stack"], "hookcall_test.go")
		})
	}
}

func TestHookListPanicWithoutLogger(t *testing.T) {
	ran := false
	hs := hookList{
		{Done: func(context.Context, DoneEvent) { panic(context.Canceled) }},
		{Done: func(context.Context, DoneEvent) { ran = true }},
	}

	require.NotPanics(t, func() { hs.done(t.Context(), nil, DoneEvent{}) })

	assert.True(t, ran)
}

func TestHookListEmpty(t *testing.T) {
	var hs hookList
	for _, tc := range hookCases {
		assert.NotPanics(t, func() { tc.dispatch(hs, t.Context(), nil) }, tc.name)
	}
}

func TestHookListPassesEvent(t *testing.T) {
	type ctxKey struct{}
	ctx := context.WithValue(t.Context(), ctxKey{}, "v")
	var got AttemptEndEvent
	var gotCtx context.Context
	hs := hookList{{AttemptEnd: func(c context.Context, e AttemptEndEvent) { gotCtx, got = c, e }}}
	want := AttemptEndEvent{Provider: "openai", Model: "gpt-image-1", Attempt: 2, Images: 1, RequestID: "req_1"}

	hs.attemptEnd(ctx, nil, want)

	assert.Equal(t, want, got)
	assert.Equal(t, "v", gotCtx.Value(ctxKey{}))
}
