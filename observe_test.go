package imagegen_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/imagegentest"
	imagegenprom "github.com/imagegen-go/imagegen/metrics/prometheus"
	"github.com/imagegen-go/imagegen/provider/openai"
)

// observeModel is the model of the observability scenarios. The default
// catalog prices it from reported usage, so the stats carry a known cost.
const observeModel = "gpt-image-1"

// eventLog records every hook event of a Client as one line, in the order
// the hooks ran. Latencies and delays print exactly, which is meaningful
// inside a synctest bubble, where time moves only when every goroutine
// waits.
type eventLog struct {
	mu          sync.Mutex
	lines       []string
	attemptEnds []imagegen.AttemptEndEvent
	doneEvents  []imagegen.DoneEvent
}

func (l *eventLog) add(ev any, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	switch e := ev.(type) {
	case imagegen.AttemptEndEvent:
		l.attemptEnds = append(l.attemptEnds, e)
	case imagegen.DoneEvent:
		l.doneEvents = append(l.doneEvents, e)
	}
}

// take returns the lines recorded since the last take.
func (l *eventLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.lines
	l.lines = nil
	return out
}

func outcome(err error, class imagegen.Class) string {
	if err == nil {
		return "ok"
	}
	return class.String()
}

func (l *eventLog) hooks() imagegen.Hooks {
	return imagegen.Hooks{
		AttemptStart: func(_ context.Context, e imagegen.AttemptStartEvent) {
			l.add(e, "start %s/%s #%d", e.Provider, e.Model, e.Attempt)
		},
		AttemptEnd: func(_ context.Context, e imagegen.AttemptEndEvent) {
			l.add(e, "end %s/%s #%d %s %v", e.Provider, e.Model, e.Attempt, outcome(e.Err, e.Class), e.Latency)
		},
		Retry: func(_ context.Context, e imagegen.RetryEvent) {
			l.add(e, "retry %s/%s #%d %s after %v", e.Provider, e.Model, e.Attempt, e.Class, e.Delay)
		},
		Fallback: func(_ context.Context, e imagegen.FallbackEvent) {
			l.add(e, "fallback %s/%s -> %s/%s %s", e.FromProvider, e.FromModel, e.ToProvider, e.ToModel, e.Class)
		},
		RateLimitWait: func(_ context.Context, e imagegen.RateLimitWaitEvent) {
			l.add(e, "wait %s/%s %v %s", e.Provider, e.Model, e.Wait, outcome(e.Err, imagegen.ClassRateLimited))
		},
		BreakerChange: func(_ context.Context, e imagegen.BreakerEvent) {
			l.add(e, "breaker %s %s -> %s", e.Provider, e.From, e.To)
		},
		CacheHit:   func(_ context.Context, e imagegen.CacheEvent) { l.add(e, "cache hit") },
		CacheMiss:  func(_ context.Context, e imagegen.CacheEvent) { l.add(e, "cache miss") },
		CacheError: func(_ context.Context, e imagegen.CacheEvent) { l.add(e, "cache error") },
		Done: func(_ context.Context, e imagegen.DoneEvent) {
			l.add(e, "done %s/%s %s %v", e.Provider, e.Model, outcome(e.Err, e.Class), e.Latency)
		},
	}
}

// newObservedClient returns a Client whose hooks record into the returned
// log, with observeModel as the default model and retries without jitter.
func newObservedClient(t *testing.T, opts ...imagegen.Option) (*imagegen.Client, *eventLog) {
	t.Helper()
	events := &eventLog{}
	opts = append([]imagegen.Option{
		imagegen.WithDefaultModel(observeModel),
		imagegen.WithRetry(imagegen.RetryPolicy{NoJitter: true}),
		imagegen.WithHooks(events.hooks()),
	}, opts...)
	c, err := imagegen.New(opts...)
	require.NoError(t, err)
	return c, events
}

// rateLimitedResult is a 429 rate_limit_exceeded with a Retry-After of d,
// as provider/openai builds it from imagegentest.RateLimited.
func rateLimitedResult(d time.Duration) imagegentest.FakeResult {
	return imagegentest.FakeResultFrom(imagegentest.RateLimited(d))
}

// pairStats returns the figures of one provider and model, failing the
// test when Stats has none.
func pairStats(t *testing.T, s imagegen.Stats, providerName, model string) imagegen.ProviderStats {
	t.Helper()
	for _, p := range s.Providers {
		if p.Provider == providerName && p.Model == model {
			return p
		}
	}
	require.Failf(t, "no stats", "no series for %s/%s in %+v", providerName, model, s.Providers)
	return imagegen.ProviderStats{}
}

// assertLatency compares the exact parts of a latency summary: count, mean
// and max. Percentiles are histogram estimates and are left out.
func assertLatency(t *testing.T, want, got imagegen.LatencyStats, what string) {
	t.Helper()
	assert.Equal(t, want.Count, got.Count, "%s latency count", what)
	assert.Equal(t, want.Mean, got.Mean, "%s latency mean", what)
	assert.Equal(t, want.Max, got.Max, "%s latency max", what)
}

// assertPair compares every figure of one provider and model with want,
// latency as assertLatency does.
func assertPair(t *testing.T, s imagegen.Stats, want imagegen.ProviderStats) {
	t.Helper()
	got := pairStats(t, s, want.Provider, want.Model)
	assertLatency(t, want.Latency, got.Latency, want.Provider+"/"+want.Model)
	got.Latency, want.Latency = imagegen.LatencyStats{}, imagegen.LatencyStats{}
	assert.Equal(t, want, got)
}

// assertTotals compares every figure of the totals with want, latency as
// assertLatency does.
func assertTotals(t *testing.T, s imagegen.Stats, want imagegen.TotalStats) {
	t.Helper()
	got := s.Totals
	assertLatency(t, want.Latency, got.Latency, "total")
	got.Latency, want.Latency = imagegen.LatencyStats{}, imagegen.LatencyStats{}
	assert.Equal(t, want, got)
}

// latencies summarizes equal durations the way the exact fields of
// LatencyStats would.
func latencies(d time.Duration, n int64) imagegen.LatencyStats {
	return imagegen.LatencyStats{Count: n, Mean: d, Max: d}
}

// classes returns counts with one for each class given.
func classes(cs ...imagegen.Class) imagegen.ClassCounts {
	var out imagegen.ClassCounts
	for _, c := range cs {
		out[c]++
	}
	return out
}

// knownCost returns the USD of a cost computed from reported usage,
// failing the test for any other cost.
func knownCost(t *testing.T, c imagegen.Cost) float64 {
	t.Helper()
	require.True(t, c.Known, "cost %+v is unknown", c)
	require.False(t, c.Estimated, "cost %+v is estimated", c)
	require.Positive(t, c.USD)
	return c.USD
}

func TestObserveSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := imagegentest.NewFakeProvider("a", imagegentest.WithFakeDelay(3*time.Second))
		c, events := newObservedClient(t, imagegen.WithProvider(a))

		res, err := c.Generate(t.Context(), "a lighthouse", imagegen.GenerateOptions{N: 2, Size: "1024x1024", Quality: "low"})

		require.NoError(t, err)
		assert.Equal(t, []string{
			"start a/gpt-image-1 #1",
			"end a/gpt-image-1 #1 ok 3s",
			"done a/gpt-image-1 ok 3s",
		}, events.take())
		require.Len(t, events.attemptEnds, 1)
		assert.Equal(t, 2, events.attemptEnds[0].Images)
		assert.Equal(t, res.Usage, events.attemptEnds[0].Usage)
		assert.Equal(t, res.RequestID, events.attemptEnds[0].RequestID)
		require.Len(t, events.doneEvents, 1)
		assert.Same(t, res, events.doneEvents[0].Result)

		cost := knownCost(t, res.Cost)
		s := c.Stats()
		require.Len(t, s.Providers, 1)
		assertPair(t, s, imagegen.ProviderStats{
			Provider: "a", Model: observeModel, Calls: 1, Successes: 1,
			AttemptStats: imagegen.AttemptStats{Attempts: 1, Images: 2, CostUSD: cost},
			Latency:      latencies(3*time.Second, 1),
		})
		assertTotals(t, s, imagegen.TotalStats{
			Calls: 1, Successes: 1,
			Latency:      latencies(3*time.Second, 1),
			AttemptStats: imagegen.AttemptStats{Attempts: 1, Images: 2, CostUSD: cost},
		})
		assert.Equal(t, imagegen.CacheStats{}, s.Cache)
	})
}

func TestObserveRetryAfter429(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := imagegentest.NewFakeProvider("a", imagegentest.WithFakeDelay(time.Second))
		a.Enqueue(rateLimitedResult(2 * time.Second))
		c, events := newObservedClient(t, imagegen.WithProvider(a))

		res, err := c.Generate(t.Context(), "a lighthouse", imagegen.GenerateOptions{})

		require.NoError(t, err)
		assert.Equal(t, 2, res.Attempts)
		assert.Equal(t, []string{
			"start a/gpt-image-1 #1",
			"end a/gpt-image-1 #1 rate_limited 1s",
			"retry a/gpt-image-1 #1 rate_limited after 2s",
			"start a/gpt-image-1 #2",
			"end a/gpt-image-1 #2 ok 1s",
			"done a/gpt-image-1 ok 4s",
		}, events.take(), "the retry waits exactly the Retry-After, and the limiter's pause adds no wait event")
		require.Len(t, events.attemptEnds, 2)
		var e *imagegen.Error
		require.ErrorAs(t, events.attemptEnds[0].Err, &e)
		assert.Equal(t, "a", e.Provider, "the Client fills in the provider name")
		assert.Equal(t, 2*time.Second, e.RetryAfter)

		cost := knownCost(t, res.Cost)
		s := c.Stats()
		attempts := imagegen.AttemptStats{
			Attempts: 2, FailedAttempts: 1,
			AttemptFailuresByClass: classes(imagegen.ClassRateLimited),
			RateLimited:            1, Retries: 1, Images: 1, CostUSD: cost,
		}
		assertPair(t, s, imagegen.ProviderStats{
			Provider: "a", Model: observeModel, Calls: 1, Successes: 1,
			AttemptStats: attempts,
			Latency:      latencies(time.Second, 1),
		})
		assertTotals(t, s, imagegen.TotalStats{
			Calls: 1, Successes: 1,
			Latency:      latencies(4*time.Second, 1),
			AttemptStats: attempts,
		})
	})
}

func TestObserveFallbackOnQuota(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := imagegentest.NewFakeProvider("a")
		a.Enqueue(imagegentest.FakeResultFrom(imagegentest.InsufficientQuota()))
		b := imagegentest.NewFakeProvider("b", imagegentest.WithFakeDelay(5*time.Second))
		c, events := newObservedClient(t, imagegen.WithProvider(a), imagegen.WithProvider(b))

		res, err := c.Generate(t.Context(), "a lighthouse", imagegen.GenerateOptions{})

		require.NoError(t, err)
		assert.Equal(t, "b", res.Provider)
		assert.Equal(t, []string{
			"start a/gpt-image-1 #1",
			"breaker a closed -> open",
			"end a/gpt-image-1 #1 quota_exceeded 0s",
			"fallback a/gpt-image-1 -> b/gpt-image-1 quota_exceeded",
			"start b/gpt-image-1 #1",
			"end b/gpt-image-1 #1 ok 5s",
			"done b/gpt-image-1 ok 5s",
		}, events.take(), "exhausted quota opens the breaker at once and moves on without a retry")

		cost := knownCost(t, res.Cost)
		s := c.Stats()
		require.Len(t, s.Providers, 2)
		assertPair(t, s, imagegen.ProviderStats{
			Provider: "a", Model: observeModel, Calls: 1, Failures: 1,
			FailuresByClass: classes(imagegen.ClassQuotaExceeded),
			AttemptStats: imagegen.AttemptStats{
				Attempts: 1, FailedAttempts: 1,
				AttemptFailuresByClass: classes(imagegen.ClassQuotaExceeded),
				Fallbacks:              1,
			},
		})
		assertPair(t, s, imagegen.ProviderStats{
			Provider: "b", Model: observeModel, Calls: 1, Successes: 1,
			AttemptStats: imagegen.AttemptStats{Attempts: 1, Images: 1, CostUSD: cost},
			Latency:      latencies(5*time.Second, 1),
		})
		assertTotals(t, s, imagegen.TotalStats{
			Calls: 1, Successes: 1,
			Latency: latencies(5*time.Second, 1),
			AttemptStats: imagegen.AttemptStats{
				Attempts: 2, FailedAttempts: 1,
				AttemptFailuresByClass: classes(imagegen.ClassQuotaExceeded),
				Fallbacks:              1, Images: 1, CostUSD: cost,
			},
		})
	})
}

func TestObserveEveryProviderFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := imagegentest.NewFakeProvider("a")
		a.Enqueue(imagegentest.FakeResultFrom(imagegentest.InsufficientQuota()))
		b := imagegentest.NewFakeProvider("b")
		overloaded := imagegentest.FakeResultFrom(imagegentest.Overloaded())
		overloaded.Delay = 2 * time.Second
		b.Enqueue(overloaded, overloaded)
		c, events := newObservedClient(t, imagegen.WithProvider(a), imagegen.WithProvider(b),
			imagegen.WithRetry(imagegen.RetryPolicy{MaxAttempts: 2, InitialDelay: time.Second, NoJitter: true}))

		_, err := c.Generate(t.Context(), "a lighthouse", imagegen.GenerateOptions{})

		var ae *imagegen.AttemptsError
		require.ErrorAs(t, err, &ae)
		assert.Len(t, ae.Errors, 3)
		assert.Equal(t, []string{
			"start a/gpt-image-1 #1",
			"breaker a closed -> open",
			"end a/gpt-image-1 #1 quota_exceeded 0s",
			"fallback a/gpt-image-1 -> b/gpt-image-1 quota_exceeded",
			"start b/gpt-image-1 #1",
			"end b/gpt-image-1 #1 server_error 2s",
			"retry b/gpt-image-1 #1 server_error after 1s",
			"start b/gpt-image-1 #2",
			"end b/gpt-image-1 #2 server_error 2s",
			"done b/gpt-image-1 server_error 5s",
		}, events.take())
		require.Len(t, events.doneEvents, 1)
		assert.Same(t, err, events.doneEvents[0].Err)
		assert.Nil(t, events.doneEvents[0].Result)

		s := c.Stats()
		assertPair(t, s, imagegen.ProviderStats{
			Provider: "a", Model: observeModel, Calls: 1, Failures: 1,
			FailuresByClass: classes(imagegen.ClassQuotaExceeded),
			AttemptStats: imagegen.AttemptStats{
				Attempts: 1, FailedAttempts: 1,
				AttemptFailuresByClass: classes(imagegen.ClassQuotaExceeded),
				Fallbacks:              1,
			},
		})
		assertPair(t, s, imagegen.ProviderStats{
			Provider: "b", Model: observeModel, Calls: 1, Failures: 1,
			FailuresByClass: classes(imagegen.ClassServer),
			AttemptStats: imagegen.AttemptStats{
				Attempts: 2, FailedAttempts: 2,
				AttemptFailuresByClass: classes(imagegen.ClassServer, imagegen.ClassServer),
				Retries:                1,
			},
		})
		assertTotals(t, s, imagegen.TotalStats{
			Calls: 1, Failures: 1,
			FailuresByClass: classes(imagegen.ClassServer),
			AttemptStats: imagegen.AttemptStats{
				Attempts: 3, FailedAttempts: 3,
				AttemptFailuresByClass: classes(imagegen.ClassQuotaExceeded, imagegen.ClassServer, imagegen.ClassServer),
				Retries:                1, Fallbacks: 1,
			},
		})
	})
}

func TestObserveRateLimitWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := imagegentest.NewFakeProvider("a")
		c, events := newObservedClient(t,
			imagegen.WithProvider(a, imagegen.WithLimits(imagegen.Limits{RequestsPerMinute: 20})))

		_, err := c.Generate(t.Context(), "first", imagegen.GenerateOptions{})
		require.NoError(t, err)
		assert.Equal(t, []string{
			"start a/gpt-image-1 #1",
			"end a/gpt-image-1 #1 ok 0s",
			"done a/gpt-image-1 ok 0s",
		}, events.take(), "the first request takes the bucket's one token and does not wait")

		res, err := c.Generate(t.Context(), "second", imagegen.GenerateOptions{})
		require.NoError(t, err)
		assert.Equal(t, []string{
			"wait a/gpt-image-1 3s ok",
			"start a/gpt-image-1 #1",
			"end a/gpt-image-1 #1 ok 0s",
			"done a/gpt-image-1 ok 3s",
		}, events.take(), "20 requests per minute space requests 3 s apart")
		assert.Equal(t, 3*time.Second, res.Latency)

		// A deadline shorter than the wait fails the wait at once.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err = c.Generate(ctx, "third", imagegen.GenerateOptions{})
		require.ErrorIs(t, err, imagegen.ErrRateLimited)
		assert.Equal(t, []string{
			"wait a/gpt-image-1 0s rate_limited",
			"done / rate_limited 0s",
		}, events.take(), "a call that sent no request is counted on no provider")

		s := c.Stats()
		assertPair(t, s, imagegen.ProviderStats{
			Provider: "a", Model: observeModel, Calls: 2, Successes: 2,
			AttemptStats: imagegen.AttemptStats{
				Attempts: 2, Images: 2,
				RateLimitWaits: 2, RateLimitWait: 3 * time.Second, RateLimitWaitErrors: 1,
				CostUSD: 2 * knownCost(t, res.Cost),
			},
			Latency: latencies(0, 2),
		})
		assert.Equal(t, int64(2), s.Totals.RateLimitWaits)
		assert.Equal(t, 3*time.Second, s.Totals.RateLimitWait)
		assert.Equal(t, int64(0), s.Totals.RateLimited, "a client-side wait is not a 429")
	})
}

func TestObserveNoWaitWhenLimiterIdle(t *testing.T) {
	// Real time, not a synctest bubble: an Acquire that returns at once
	// still takes some nanoseconds, which must not count as a wait.
	a := imagegentest.NewFakeProvider("a")
	c, events := newObservedClient(t,
		imagegen.WithProvider(a, imagegen.WithLimits(imagegen.Limits{RequestsPerMinute: 6_000_000, RequestBurst: 100})))

	for range 20 {
		_, err := c.Generate(t.Context(), "a lighthouse", imagegen.GenerateOptions{})
		require.NoError(t, err)
	}

	for _, line := range events.take() {
		assert.NotContains(t, line, "wait ", "no call was held back")
	}
	s := c.Stats()
	assert.Zero(t, s.Totals.RateLimitWaits)
	assert.Zero(t, s.Totals.RateLimitWait)
}

func TestObserveBreakerChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := imagegentest.NewFakeProvider("a")
		overloaded := imagegentest.FakeResultFrom(imagegentest.Overloaded())
		a.Enqueue(overloaded, overloaded)
		c, events := newObservedClient(t, imagegen.WithProvider(a),
			imagegen.WithRetry(imagegen.RetryPolicy{MaxAttempts: 1}),
			imagegen.WithBreaker(imagegen.BreakerSettings{ConsecutiveFailures: 2, Cooldown: 10 * time.Second}))
		generate := func() error {
			_, err := c.Generate(t.Context(), "a lighthouse", imagegen.GenerateOptions{})
			return err
		}

		require.ErrorIs(t, generate(), imagegen.ErrServer)
		assert.Equal(t, []string{
			"start a/gpt-image-1 #1",
			"end a/gpt-image-1 #1 server_error 0s",
			"done a/gpt-image-1 server_error 0s",
		}, events.take())

		require.ErrorIs(t, generate(), imagegen.ErrServer)
		assert.Equal(t, []string{
			"start a/gpt-image-1 #1",
			"breaker a closed -> open",
			"end a/gpt-image-1 #1 server_error 0s",
			"done a/gpt-image-1 server_error 0s",
		}, events.take(), "the second failure in a row opens the breaker")

		require.ErrorIs(t, generate(), imagegen.ErrBreakerOpen)
		assert.Equal(t, []string{
			"done / server_error 0s",
		}, events.take(), "an open breaker sends nothing, so the call is counted on no provider")
		assert.Equal(t, 2, a.Calls())

		time.Sleep(10 * time.Second)
		res, err := c.Generate(t.Context(), "a lighthouse", imagegen.GenerateOptions{})
		require.NoError(t, err)
		assert.Equal(t, []string{
			"breaker a open -> half_open",
			"start a/gpt-image-1 #1",
			"breaker a half_open -> closed",
			"end a/gpt-image-1 #1 ok 0s",
			"done a/gpt-image-1 ok 0s",
		}, events.take(), "after the cooldown one probe goes through and closes the breaker")

		s := c.Stats()
		assertPair(t, s, imagegen.ProviderStats{
			Provider: "a", Model: observeModel, Calls: 3, Successes: 1, Failures: 2,
			FailuresByClass: classes(imagegen.ClassServer, imagegen.ClassServer),
			AttemptStats: imagegen.AttemptStats{
				Attempts: 3, FailedAttempts: 2,
				AttemptFailuresByClass: classes(imagegen.ClassServer, imagegen.ClassServer),
				Images:                 1, CostUSD: knownCost(t, res.Cost),
			},
			Latency: latencies(0, 1),
		})
		assert.Equal(t, int64(4), s.Totals.Calls)
		assert.Equal(t, int64(3), s.Totals.Failures)
	})
}

func TestObserveFallbackToOpenBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		notFound := imagegentest.FakeResultFrom(imagegentest.ModelNotFound(observeModel))
		a := imagegentest.NewFakeProvider("a")
		a.Enqueue(notFound, notFound)
		b := imagegentest.NewFakeProvider("b")
		b.Enqueue(imagegentest.FakeResultFrom(imagegentest.Overloaded()))
		c, events := newObservedClient(t, imagegen.WithProvider(a), imagegen.WithProvider(b),
			imagegen.WithRetry(imagegen.RetryPolicy{MaxAttempts: 1}),
			imagegen.WithBreaker(imagegen.BreakerSettings{ConsecutiveFailures: 1, Cooldown: time.Minute}))
		generate := func() error {
			_, err := c.Generate(t.Context(), "a lighthouse", imagegen.GenerateOptions{})
			return err
		}

		require.ErrorIs(t, generate(), imagegen.ErrServer)
		assert.Equal(t, []string{
			"start a/gpt-image-1 #1",
			"end a/gpt-image-1 #1 not_found 0s",
			"fallback a/gpt-image-1 -> b/gpt-image-1 not_found",
			"start b/gpt-image-1 #1",
			"breaker b closed -> open",
			"end b/gpt-image-1 #1 server_error 0s",
			"done b/gpt-image-1 server_error 0s",
		}, events.take())

		require.ErrorIs(t, generate(), imagegen.ErrBreakerOpen)
		assert.Equal(t, []string{
			"start a/gpt-image-1 #1",
			"end a/gpt-image-1 #1 not_found 0s",
			"done a/gpt-image-1 not_found 0s",
		}, events.take(), "b's open breaker sends nothing, so the call ends on a, where it sent its last request")
		assert.Equal(t, 1, b.Calls())

		s := c.Stats()
		assertPair(t, s, imagegen.ProviderStats{
			Provider: "a", Model: observeModel, Calls: 2, Failures: 2,
			FailuresByClass: classes(imagegen.ClassNotFound, imagegen.ClassNotFound),
			AttemptStats: imagegen.AttemptStats{
				Attempts: 2, FailedAttempts: 2,
				AttemptFailuresByClass: classes(imagegen.ClassNotFound, imagegen.ClassNotFound),
				Fallbacks:              1,
			},
		})
		assertPair(t, s, imagegen.ProviderStats{
			Provider: "b", Model: observeModel, Calls: 1, Failures: 1,
			FailuresByClass: classes(imagegen.ClassServer),
			AttemptStats: imagegen.AttemptStats{
				Attempts: 1, FailedAttempts: 1,
				AttemptFailuresByClass: classes(imagegen.ClassServer),
			},
		})
		assert.Equal(t, int64(2), s.Totals.Calls)
	})
}

// observeCache is a map-backed imagegen.Cache whose Get and Set fail with
// getErr and setErr when those are set. It starts no goroutine, so it works
// inside synctest bubbles.
type observeCache struct {
	mu             sync.Mutex
	entries        map[string][]byte
	getErr, setErr error
}

func (oc *observeCache) Get(_ context.Context, key string) ([]byte, error) {
	oc.mu.Lock()
	defer oc.mu.Unlock()
	if oc.getErr != nil {
		return nil, oc.getErr
	}
	v, ok := oc.entries[key]
	if !ok {
		return nil, imagegen.ErrCacheMiss
	}
	return v, nil
}

func (oc *observeCache) Set(_ context.Context, key string, value []byte, _ time.Duration) error {
	oc.mu.Lock()
	defer oc.mu.Unlock()
	if oc.setErr != nil {
		return oc.setErr
	}
	if oc.entries == nil {
		oc.entries = make(map[string][]byte)
	}
	oc.entries[key] = value
	return nil
}

func (oc *observeCache) fail(getErr, setErr error) {
	oc.mu.Lock()
	defer oc.mu.Unlock()
	oc.getErr, oc.setErr = getErr, setErr
}

func TestObserveCacheHitMissAndError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cache := &observeCache{}
		a := imagegentest.NewFakeProvider("a", imagegentest.WithFakeDelay(3*time.Second))
		c, events := newObservedClient(t, imagegen.WithProvider(a), imagegen.WithCache(cache, imagegen.CacheOptions{}))
		generate := func(prompt string) *imagegen.Result {
			res, err := c.Generate(t.Context(), prompt, imagegen.GenerateOptions{})
			require.NoError(t, err)
			return res
		}

		first := generate("a lighthouse")
		assert.Equal(t, []string{
			"cache miss",
			"start a/gpt-image-1 #1",
			"end a/gpt-image-1 #1 ok 3s",
			"done a/gpt-image-1 ok 3s",
		}, events.take())

		cached := generate("a lighthouse")
		assert.True(t, cached.Cached)
		assert.Equal(t, []string{
			"cache hit",
			"done / ok 0s",
		}, events.take(), "a cache hit uses no provider")

		cache.fail(errors.New("cache backend unreachable"), errors.New("cache backend unreachable"))
		third := generate("a lighthouse")
		assert.False(t, third.Cached)
		assert.Equal(t, []string{
			"cache error",
			"start a/gpt-image-1 #1",
			"end a/gpt-image-1 #1 ok 3s",
			"cache error",
			"done a/gpt-image-1 ok 3s",
		}, events.take(), "a failing cache reports the read and the write, and the call goes on")
		assert.Equal(t, 2, a.Calls())

		s := c.Stats()
		assert.Equal(t, imagegen.CacheStats{Hits: 1, Misses: 1, Errors: 2}, s.Cache)
		cost := knownCost(t, first.Cost) + knownCost(t, third.Cost)
		assertPair(t, s, imagegen.ProviderStats{
			Provider: "a", Model: observeModel, Calls: 2, Successes: 2,
			AttemptStats: imagegen.AttemptStats{Attempts: 2, Images: 2, CostUSD: cost},
			Latency:      latencies(3*time.Second, 2),
		})
		assertTotals(t, s, imagegen.TotalStats{
			Calls: 3, Successes: 3, CachedCalls: 1,
			Latency:      imagegen.LatencyStats{Count: 3, Mean: 2 * time.Second, Max: 3 * time.Second},
			AttemptStats: imagegen.AttemptStats{Attempts: 2, Images: 2, CostUSD: cost},
		})
	})
}

func TestObservePanickingHook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		panickingHooks := imagegen.Hooks{
			AttemptStart: func(context.Context, imagegen.AttemptStartEvent) {
				panic("hook failed with key sk-proj-HookPanicKey0123456789")
			},
			Done: func(context.Context, imagegen.DoneEvent) { panic(errors.New("done hook failed")) },
		}
		a := imagegentest.NewFakeProvider("a")
		c, events := newObservedClient(t, imagegen.WithProvider(a), imagegen.WithLogger(logger), imagegen.WithHooks(panickingHooks))

		res, err := c.Generate(t.Context(), "a lighthouse", imagegen.GenerateOptions{})

		require.NoError(t, err)
		assert.Equal(t, "a", res.Provider)
		assert.Equal(t, []string{
			"start a/gpt-image-1 #1",
			"end a/gpt-image-1 #1 ok 0s",
			"done a/gpt-image-1 ok 0s",
		}, events.take(), "hooks registered before the panicking one still see every event")
		assert.Equal(t, int64(1), c.Stats().Totals.Successes, "the stats record the call after the panicking Done hook")

		records := decodeLogs(t, &logs)
		var panics []map[string]any
		for _, r := range records {
			if r["msg"] == "imagegen: hook panicked, continuing the call" {
				panics = append(panics, r)
			}
		}
		require.Len(t, panics, 2)
		for i, want := range []struct{ hook, value string }{
			{"AttemptStart", "hook failed with key [REDACTED]"},
			{"Done", "done hook failed"},
		} {
			assert.Equal(t, "ERROR", panics[i]["level"])
			assert.Equal(t, want.hook, panics[i]["hook"])
			assert.Equal(t, float64(1), panics[i]["hooks_index"], "the panicking Hooks is the second registered")
			assert.Equal(t, want.value, panics[i]["panic"])
			assert.Contains(t, panics[i]["stack"], "runtime/debug.Stack")
		}
		assert.NotContains(t, logs.String(), "HookPanicKey")
	})
}

// decodeLogs parses the lines a slog JSON handler wrote.
func decodeLogs(t *testing.T, logs *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(logs.String()) {
		var r map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &r), "log line %q", line)
		out = append(out, r)
	}
	return out
}

func TestObserveHooksRunInRegistrationOrder(t *testing.T) {
	var order []string
	record := func(name string) imagegen.Hooks {
		return imagegen.Hooks{Done: func(context.Context, imagegen.DoneEvent) { order = append(order, name) }}
	}
	c, err := imagegen.New(imagegen.WithProvider(imagegentest.NewFakeProvider("a")),
		imagegen.WithHooks(record("first")), imagegen.WithHooks(record("second")), imagegen.WithHooks(record("third")))
	require.NoError(t, err)

	_, err = c.Generate(t.Context(), "a lighthouse", imagegen.GenerateOptions{})

	require.NoError(t, err)
	assert.Equal(t, []string{"first", "second", "third"}, order)
}

// secretWindows returns every 8-byte substring of key. A text that
// contains none of them contains no part of the key longer than 7 bytes.
func secretWindows(key string) []string {
	var out []string
	for i := 0; i+8 <= len(key); i++ {
		out = append(out, key[i:i+8])
	}
	return out
}

// assertNoSecret fails the test when text contains a part of key 8 bytes
// or longer, and names the first part found.
func assertNoSecret(t *testing.T, key, text, where string) {
	t.Helper()
	for _, w := range secretWindows(key) {
		if strings.Contains(text, w) {
			assert.Failf(t, "secret leaked", "%s contains %q, part of the API key: %s", where, w, text)
			return
		}
	}
}

func TestObserveNoKeyInLogsOrErrors(t *testing.T) {
	const apiKey = "sk-proj-SECRETk3y0123456789abcdefGHIJKL"
	// The prompt is longer than the 80 characters that Debug logs keep, so
	// prompt-tail must never reach a log.
	const prompt = "prompt-head: a lighthouse at dawn on a rocky coast, gulls circling, long exposure, " +
		"soft pastel light, prompt-tail"
	echo := func(status int, code, message string) imagegentest.HandlerFunc {
		return func(r *imagegentest.RecordedRequest) *imagegentest.Response {
			auth := r.Header.Get("Authorization")
			return &imagegentest.Response{Status: status, Error: &imagegentest.APIError{
				Message: strings.ReplaceAll(message, "AUTH", auth),
				Type:    imagegentest.TypeServerError,
				Code:    strings.ReplaceAll(code, "AUTH", auth),
			}}
		}
	}
	answer := func(resp imagegentest.Response) imagegentest.HandlerFunc {
		return func(*imagegentest.RecordedRequest) *imagegentest.Response { return &resp }
	}
	htmlWithKey := imagegentest.HTMLProxyError(http.StatusBadGateway)
	htmlWithKey.Body = "<html><body>upstream refused " + apiKey + "</body></html>"

	tests := []struct {
		name      string
		server    []imagegentest.Option
		closed    bool
		wantClass imagegen.Class
	}{
		{"invalid key quoted masked", []imagegentest.Option{imagegentest.WithAPIKey("sk-proj-TheServersOwnKey0123456789")}, false, imagegen.ClassAuthentication},
		{"invalid key scripted", []imagegentest.Option{imagegentest.WithHandler(answer(imagegentest.InvalidAPIKey()))}, false, imagegen.ClassAuthentication},
		{"authorization echoed in message", []imagegentest.Option{imagegentest.WithHandler(echo(http.StatusInternalServerError, "", "proxy refused header Authorization: AUTH"))}, false, imagegen.ClassServer},
		{"authorization echoed in code", []imagegentest.Option{imagegentest.WithHandler(echo(http.StatusBadGateway, "AUTH", "bad gateway"))}, false, imagegen.ClassServer},
		{"key in html error page", []imagegentest.Option{imagegentest.WithHandler(answer(htmlWithKey))}, false, imagegen.ClassServer},
		{"key in unreadable 200 body", []imagegentest.Option{imagegentest.WithHandler(answer(imagegentest.Response{
			Status: http.StatusOK, Body: `{"data":"` + apiKey + `"}`,
		}))}, false, imagegen.ClassOutcomeUnknown},
		{"connection dropped", []imagegentest.Option{imagegentest.WithHandler(answer(imagegentest.DropConnection()))}, false, imagegen.ClassOutcomeUnknown},
		{"connection refused", nil, true, imagegen.ClassNetwork},
		{"attempt timeout", []imagegentest.Option{imagegentest.WithHandler(answer(imagegentest.Timeout(time.Minute)))}, false, imagegen.ClassTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			var texts []string
			opts := []imagegen.Option{
				imagegen.WithLogger(logger),
				imagegen.WithRetry(imagegen.RetryPolicy{
					MaxAttempts: 2, InitialDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond,
					AttemptTimeout: 200 * time.Millisecond,
				}),
				imagegen.WithHooks(imagegen.Hooks{
					AttemptEnd: func(_ context.Context, e imagegen.AttemptEndEvent) {
						if e.Err != nil {
							texts = append(texts, e.Err.Error())
						}
					},
					Retry:    func(_ context.Context, e imagegen.RetryEvent) { texts = append(texts, e.Err.Error()) },
					Fallback: func(_ context.Context, e imagegen.FallbackEvent) { texts = append(texts, e.Err.Error()) },
				}),
			}
			var srvs []*imagegentest.Server
			for i := range 2 {
				srv := imagegentest.NewServer(tt.server...)
				t.Cleanup(srv.Close)
				if tt.closed {
					srv.Close()
				}
				srvs = append(srvs, srv)
				p, err := openai.New(openai.Options{Name: fmt.Sprintf("p%d", i), APIKey: apiKey, BaseURL: srv.URL})
				require.NoError(t, err)
				opts = append(opts, imagegen.WithProvider(p))
			}
			c, err := imagegen.New(opts...)
			require.NoError(t, err)

			_, err = c.Generate(t.Context(), prompt, imagegen.GenerateOptions{})

			require.Error(t, err)
			var ae *imagegen.AttemptsError
			require.ErrorAs(t, err, &ae)
			require.NotEmpty(t, ae.Errors)
			assert.Equal(t, tt.wantClass, ae.Last().Class)
			if !tt.closed {
				reqs := srvs[0].Requests()
				require.NotEmpty(t, reqs)
				assert.Equal(t, "Bearer "+apiKey, reqs[0].Header.Get("Authorization"), "the key reached the server")
			}

			// A caller prints and logs the error it gets.
			texts = append(texts, err.Error(), fmt.Sprintf("%+v", err))
			for _, e := range ae.Errors {
				texts = append(texts, e.Error(), e.Message, e.Code, e.Type, e.Param)
			}
			logger.Error("generate failed", "error", err)
			for i, text := range texts {
				assertNoSecret(t, apiKey, text, fmt.Sprintf("error text %d", i))
			}

			records := decodeLogs(t, &logs)
			require.NotEmpty(t, records)
			for line := range strings.Lines(logs.String()) {
				assertNoSecret(t, apiKey, line, "log line")
			}
			// Debug records may contain the prompt, truncated. Records
			// above Debug never contain it.
			promptLogged := false
			for _, r := range records {
				line, err := json.Marshal(r)
				require.NoError(t, err)
				assert.NotContains(t, string(line), "prompt-tail", "a log record contains the prompt untruncated")
				if r["level"] == "DEBUG" {
					if p, ok := r["prompt"].(string); ok {
						promptLogged = true
						assert.True(t, strings.HasPrefix(p, "prompt-head"), "logged prompt %q", p)
						assert.LessOrEqual(t, utf8.RuneCountInString(p), 81, "logged prompt %q", p)
					}
					continue
				}
				assert.NotContains(t, string(line), "prompt-head", "a log record above Debug contains the prompt")
			}
			assert.True(t, promptLogged, "the Debug log names the prompt of the call")
		})
	}
}

// histogramCounts returns the sample count and sum of each series of the
// histogram name, keyed by its label values joined with commas in label
// name order.
func histogramCounts(t *testing.T, reg prometheus.Gatherer, name string) map[string][2]float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	out := map[string][2]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var values []string
			for _, l := range m.GetLabel() {
				values = append(values, l.GetValue())
			}
			h := m.GetHistogram()
			out[strings.Join(values, ",")] = [2]float64{float64(h.GetSampleCount()), h.GetSampleSum()}
		}
	}
	return out
}

func TestObservePrometheusScrape(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		metrics, err := imagegenprom.New(reg, imagegenprom.Options{})
		require.NoError(t, err)
		a := imagegentest.NewFakeProvider("a")
		b := imagegentest.NewFakeProvider("b")
		c, err := imagegen.New(imagegen.WithProvider(a), imagegen.WithProvider(b),
			imagegen.WithDefaultModel(observeModel), imagegen.WithHooks(metrics.Hooks()))
		require.NoError(t, err)
		var costA, costB float64

		// A success on a.
		res, err := c.Generate(t.Context(), "first", imagegen.GenerateOptions{})
		require.NoError(t, err)
		costA += knownCost(t, res.Cost)

		// A 429 on a, a retry after 1 s, then success on a.
		a.Enqueue(rateLimitedResult(time.Second))
		res, err = c.Generate(t.Context(), "second", imagegen.GenerateOptions{})
		require.NoError(t, err)
		require.Equal(t, "a", res.Provider)
		costA += knownCost(t, res.Cost)

		// Exhausted quota on a, which opens its breaker, then b.
		a.Enqueue(imagegentest.FakeResultFrom(imagegentest.InsufficientQuota()))
		res, err = c.Generate(t.Context(), "third", imagegen.GenerateOptions{})
		require.NoError(t, err)
		require.Equal(t, "b", res.Provider)
		costB += knownCost(t, res.Cost)

		want := fmt.Sprintf(`
# HELP imagegen_attempts_total Provider calls, by failure class (none on success).
# TYPE imagegen_attempts_total counter
imagegen_attempts_total{class="none",model="gpt-image-1",provider="a"} 2
imagegen_attempts_total{class="quota_exceeded",model="gpt-image-1",provider="a"} 1
imagegen_attempts_total{class="rate_limited",model="gpt-image-1",provider="a"} 1
imagegen_attempts_total{class="none",model="gpt-image-1",provider="b"} 1
# HELP imagegen_breaker_state Circuit breaker state per provider: 0 closed, 1 open, 2 half open.
# TYPE imagegen_breaker_state gauge
imagegen_breaker_state{provider="a"} 1
# HELP imagegen_cost_usd_total Cost of successful calls in US dollars, from reported usage (known) or the catalog (estimated).
# TYPE imagegen_cost_usd_total counter
imagegen_cost_usd_total{kind="known",model="gpt-image-1",provider="a"} %g
imagegen_cost_usd_total{kind="known",model="gpt-image-1",provider="b"} %g
# HELP imagegen_fallbacks_total Moves from one provider/model to the next.
# TYPE imagegen_fallbacks_total counter
imagegen_fallbacks_total{from="a/gpt-image-1",to="b/gpt-image-1"} 1
# HELP imagegen_images_total Images returned by successful provider calls.
# TYPE imagegen_images_total counter
imagegen_images_total{model="gpt-image-1",provider="a"} 2
imagegen_images_total{model="gpt-image-1",provider="b"} 1
# HELP imagegen_rate_limited_total Provider calls answered with a rate limit (HTTP 429).
# TYPE imagegen_rate_limited_total counter
imagegen_rate_limited_total{model="gpt-image-1",provider="a"} 1
# HELP imagegen_requests_total Generate and Edit calls, by the provider and model of the last attempt, result and failure class.
# TYPE imagegen_requests_total counter
imagegen_requests_total{class="none",model="gpt-image-1",provider="a",result="success"} 2
imagegen_requests_total{class="none",model="gpt-image-1",provider="b",result="success"} 1
# HELP imagegen_retries_total Retries of the same provider and model, by the class of the failure retried.
# TYPE imagegen_retries_total counter
imagegen_retries_total{class="rate_limited",model="gpt-image-1",provider="a"} 1
`, costA, costB)
		assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want),
			"imagegen_attempts_total", "imagegen_breaker_state", "imagegen_cache_total",
			"imagegen_cost_usd_total", "imagegen_fallbacks_total", "imagegen_images_total",
			"imagegen_rate_limited_total", "imagegen_requests_total", "imagegen_retries_total",
			"imagegen_unknown_cost_requests_total"))

		assert.Equal(t, map[string][2]float64{
			"gpt-image-1,a,success": {2, 1},
			"gpt-image-1,b,success": {1, 0},
		}, histogramCounts(t, reg, "imagegen_request_duration_seconds"), "the retried call took the 1 s Retry-After")
		assert.Equal(t, map[string][2]float64{
			"gpt-image-1,a,error":   {2, 0},
			"gpt-image-1,a,success": {2, 0},
			"gpt-image-1,b,success": {1, 0},
		}, histogramCounts(t, reg, "imagegen_attempt_duration_seconds"))
		assert.Empty(t, histogramCounts(t, reg, "imagegen_rate_limit_wait_seconds"))

		// The metrics and the Client's own stats count the same events.
		s := c.Stats().Totals
		assert.Equal(t, int64(3), s.Calls)
		assert.Equal(t, int64(5), s.Attempts)
		assert.Equal(t, int64(1), s.Retries)
		assert.Equal(t, int64(1), s.Fallbacks)
		assert.Equal(t, int64(1), s.RateLimited)
		assert.InDelta(t, costA+costB, s.CostUSD, 1e-12)
	})
}
