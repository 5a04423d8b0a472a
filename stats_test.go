package imagegen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var statsTestSince = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

// statsEvent is one record call, in the order the Client would make it.
type statsEvent func(r *statsRecorder)

func attemptOK(provider, model string, attempt int, latency time.Duration, images int) statsEvent {
	return func(r *statsRecorder) {
		r.recordAttemptEnd(AttemptEndEvent{Provider: provider, Model: model, Attempt: attempt, Latency: latency, Images: images})
	}
}

func attemptFailed(provider, model string, attempt int, latency time.Duration, class Class) statsEvent {
	return func(r *statsRecorder) {
		r.recordAttemptEnd(AttemptEndEvent{
			Provider: provider, Model: model, Attempt: attempt, Latency: latency,
			Err: &Error{Provider: provider, Model: model, Class: class}, Class: class,
		})
	}
}

func retried(provider, model string, attempt int, class Class) statsEvent {
	return func(r *statsRecorder) {
		r.recordRetry(RetryEvent{Provider: provider, Model: model, Attempt: attempt, Delay: time.Second, Err: class.Sentinel(), Class: class})
	}
}

func fellBack(fromProvider, fromModel, toProvider, toModel string, class Class) statsEvent {
	return func(r *statsRecorder) {
		r.recordFallback(FallbackEvent{
			FromProvider: fromProvider, FromModel: fromModel, ToProvider: toProvider, ToModel: toModel,
			Err: class.Sentinel(), Class: class,
		})
	}
}

func waited(provider, model string, wait time.Duration, err error) statsEvent {
	return func(r *statsRecorder) {
		r.recordRateLimitWait(RateLimitWaitEvent{Provider: provider, Model: model, Wait: wait, Err: err})
	}
}

func cacheMissed() statsEvent { return func(r *statsRecorder) { r.recordCacheMiss() } }
func cacheFound() statsEvent  { return func(r *statsRecorder) { r.recordCacheHit() } }
func cacheFailed() statsEvent { return func(r *statsRecorder) { r.recordCacheError() } }

func doneOK(provider, model string, latency time.Duration, res Result) statsEvent {
	return func(r *statsRecorder) {
		r.recordDone(DoneEvent{Provider: provider, Model: model, Result: &res, Latency: latency})
	}
}

func doneFailed(provider, model string, latency time.Duration, class Class) statsEvent {
	return func(r *statsRecorder) {
		r.recordDone(DoneEvent{Provider: provider, Model: model, Err: class.Sentinel(), Class: class, Latency: latency})
	}
}

func classCounts(pairs map[Class]int64) ClassCounts {
	var cc ClassCounts
	for c, n := range pairs {
		cc[c] = n
	}
	return cc
}

func oneLatency(d time.Duration) LatencyStats {
	return LatencyStats{Count: 1, Mean: d, P50: d, P95: d, P99: d, Max: d}
}

func TestStatsRecorderScenarios(t *testing.T) {
	tests := []struct {
		name      string
		events    []statsEvent
		providers []ProviderStats
		totals    TotalStats
		cache     CacheStats
	}{
		{
			name: "success",
			events: []statsEvent{
				cacheMissed(),
				waited("openai", "gpt-image-1", 2*time.Second, nil),
				attemptOK("openai", "gpt-image-1", 1, 20*time.Second, 2),
				doneOK("openai", "gpt-image-1", 23*time.Second, Result{Cost: Cost{USD: 0.17, Known: true}}),
			},
			providers: []ProviderStats{{
				Provider: "openai", Model: "gpt-image-1",
				Calls: 1, Successes: 1,
				AttemptStats: AttemptStats{
					Attempts:       1,
					RateLimitWaits: 1, RateLimitWait: 2 * time.Second,
					Images: 2, CostUSD: 0.17,
				},
				Latency: oneLatency(20 * time.Second),
			}},
			totals: TotalStats{
				Calls: 1, Successes: 1, Latency: oneLatency(23 * time.Second),
				AttemptStats: AttemptStats{
					Attempts:       1,
					RateLimitWaits: 1, RateLimitWait: 2 * time.Second,
					Images: 2, CostUSD: 0.17,
				},
			},
			cache: CacheStats{Misses: 1},
		},
		{
			name: "retry after rate limit",
			events: []statsEvent{
				attemptFailed("openai", "gpt-image-1", 1, 300*time.Millisecond, ClassRateLimited),
				retried("openai", "gpt-image-1", 1, ClassRateLimited),
				attemptOK("openai", "gpt-image-1", 2, 30*time.Second, 1),
				doneOK("openai", "gpt-image-1", 32*time.Second, Result{Cost: Cost{USD: 0.04, Known: true, Estimated: true}}),
			},
			providers: []ProviderStats{{
				Provider: "openai", Model: "gpt-image-1",
				Calls: 1, Successes: 1,
				AttemptStats: AttemptStats{
					Attempts: 2, FailedAttempts: 1,
					AttemptFailuresByClass: classCounts(map[Class]int64{ClassRateLimited: 1}),
					RateLimited:            1, Retries: 1,
					Images: 1, EstimatedCostUSD: 0.04,
				},
				Latency: oneLatency(30 * time.Second),
			}},
			totals: TotalStats{
				Calls: 1, Successes: 1, Latency: oneLatency(32 * time.Second),
				AttemptStats: AttemptStats{
					Attempts: 2, FailedAttempts: 1,
					AttemptFailuresByClass: classCounts(map[Class]int64{ClassRateLimited: 1}),
					RateLimited:            1, Retries: 1,
					Images: 1, EstimatedCostUSD: 0.04,
				},
			},
		},
		{
			name: "fallback to second provider",
			events: []statsEvent{
				attemptFailed("azure", "gpt-image-1", 1, time.Second, ClassServer),
				retried("azure", "gpt-image-1", 1, ClassServer),
				attemptFailed("azure", "gpt-image-1", 2, time.Second, ClassServer),
				fellBack("azure", "gpt-image-1", "openai", "gpt-image-1", ClassServer),
				attemptOK("openai", "gpt-image-1", 1, 40*time.Second, 1),
				doneOK("openai", "gpt-image-1", 45*time.Second, Result{}),
			},
			providers: []ProviderStats{
				{
					Provider: "azure", Model: "gpt-image-1",
					Calls: 1, Failures: 1,
					FailuresByClass: classCounts(map[Class]int64{ClassServer: 1}),
					AttemptStats: AttemptStats{
						Attempts: 2, FailedAttempts: 2,
						AttemptFailuresByClass: classCounts(map[Class]int64{ClassServer: 2}),
						Retries:                1, Fallbacks: 1,
					},
				},
				{
					Provider: "openai", Model: "gpt-image-1",
					Calls: 1, Successes: 1,
					AttemptStats: AttemptStats{Attempts: 1, Images: 1, UnknownCostCalls: 1},
					Latency:      oneLatency(40 * time.Second),
				},
			},
			totals: TotalStats{
				Calls: 1, Successes: 1, Latency: oneLatency(45 * time.Second),
				AttemptStats: AttemptStats{
					Attempts: 3, FailedAttempts: 2,
					AttemptFailuresByClass: classCounts(map[Class]int64{ClassServer: 2}),
					Retries:                1, Fallbacks: 1, Images: 1, UnknownCostCalls: 1,
				},
			},
		},
		{
			name: "cache hit",
			events: []statsEvent{
				cacheFound(),
				doneOK("", "", 2*time.Millisecond, Result{Cached: true, Provider: "openai", Model: "gpt-image-1", Cost: Cost{USD: 0.17, Known: true}}),
			},
			providers: []ProviderStats{},
			totals: TotalStats{
				Calls: 1, Successes: 1, CachedCalls: 1, Latency: oneLatency(2 * time.Millisecond),
			},
			cache: CacheStats{Hits: 1},
		},
		{
			name: "shared result and cache error",
			events: []statsEvent{
				cacheFailed(),
				doneOK("", "", 5*time.Second, Result{Shared: true, Cost: Cost{USD: 0.17, Known: true}}),
			},
			providers: []ProviderStats{},
			totals: TotalStats{
				Calls: 1, Successes: 1, SharedCalls: 1, Latency: oneLatency(5 * time.Second),
			},
			cache: CacheStats{Errors: 1},
		},
		{
			name: "failure on last provider",
			events: []statsEvent{
				attemptFailed("openai", "dall-e-3", 1, 200*time.Millisecond, ClassInvalidRequest),
				doneFailed("openai", "dall-e-3", 250*time.Millisecond, ClassInvalidRequest),
			},
			providers: []ProviderStats{{
				Provider: "openai", Model: "dall-e-3",
				Calls: 1, Failures: 1,
				FailuresByClass: classCounts(map[Class]int64{ClassInvalidRequest: 1}),
				AttemptStats: AttemptStats{
					Attempts: 1, FailedAttempts: 1,
					AttemptFailuresByClass: classCounts(map[Class]int64{ClassInvalidRequest: 1}),
				},
			}},
			totals: TotalStats{
				Calls: 1, Failures: 1,
				FailuresByClass: classCounts(map[Class]int64{ClassInvalidRequest: 1}),
				AttemptStats: AttemptStats{
					Attempts: 1, FailedAttempts: 1,
					AttemptFailuresByClass: classCounts(map[Class]int64{ClassInvalidRequest: 1}),
				},
			},
		},
		{
			name: "rate-limit wait fails before any attempt",
			events: []statsEvent{
				waited("openai", "gpt-image-1", 0, context.DeadlineExceeded),
				doneFailed("openai", "gpt-image-1", time.Second, ClassTimeout),
			},
			providers: []ProviderStats{{
				Provider: "openai", Model: "gpt-image-1",
				Calls: 1, Failures: 1,
				FailuresByClass: classCounts(map[Class]int64{ClassTimeout: 1}),
				AttemptStats:    AttemptStats{RateLimitWaits: 1, RateLimitWaitErrors: 1},
			}},
			totals: TotalStats{
				Calls: 1, Failures: 1,
				FailuresByClass: classCounts(map[Class]int64{ClassTimeout: 1}),
				AttemptStats:    AttemptStats{RateLimitWaits: 1, RateLimitWaitErrors: 1},
			},
		},
		{
			name: "rejected before routing",
			events: []statsEvent{
				doneFailed("", "", 0, ClassInvalidRequest),
			},
			providers: []ProviderStats{},
			totals: TotalStats{
				Calls: 1, Failures: 1,
				FailuresByClass: classCounts(map[Class]int64{ClassInvalidRequest: 1}),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newStatsRecorder(statsTestSince)
			for _, record := range tt.events {
				record(r)
			}

			got := r.snapshot()

			assert.Equal(t, statsTestSince, got.Since)
			assert.Equal(t, tt.providers, got.Providers)
			assert.Equal(t, tt.totals, got.Totals)
			assert.Equal(t, tt.cache, got.Cache)
		})
	}
}

func TestStatsRecorderInvalidInputs(t *testing.T) {
	r := newStatsRecorder(statsTestSince)
	r.recordAttemptEnd(AttemptEndEvent{Provider: "p", Model: "m", Err: errors.New("boom"), Class: Class(99)})
	r.recordAttemptEnd(AttemptEndEvent{Provider: "p", Model: "m", Latency: -time.Second})
	r.recordDone(DoneEvent{Provider: "p", Model: "m", Result: &Result{Cost: Cost{USD: nan(), Known: true}}})
	r.recordDone(DoneEvent{Provider: "p", Model: "m"})

	got := r.snapshot()

	require.Len(t, got.Providers, 1)
	p := got.Providers[0]
	assert.Equal(t, int64(1), p.AttemptFailuresByClass.Count(ClassUnknown), "out-of-range class counts as unknown")
	assert.Equal(t, time.Duration(0), p.Latency.Max, "negative latency counts as 0")
	assert.Equal(t, int64(1), p.UnknownCostCalls, "NaN cost counts as unknown")
	assert.Zero(t, p.CostUSD)
	assert.Equal(t, int64(2), got.Totals.Successes, "a success without Result still counts")
}

func nan() float64 {
	zero := 0.0
	return zero / zero
}

func TestStatsRecorderNilIsNoop(t *testing.T) {
	var r *statsRecorder
	r.recordAttemptEnd(AttemptEndEvent{})
	r.recordRetry(RetryEvent{})
	r.recordFallback(FallbackEvent{})
	r.recordRateLimitWait(RateLimitWaitEvent{})
	r.recordCacheHit()
	r.recordCacheMiss()
	r.recordCacheError()
	r.recordDone(DoneEvent{})

	assert.Equal(t, Stats{}, r.snapshot())
}

func TestStatsRecorderSortsProviders(t *testing.T) {
	r := newStatsRecorder(statsTestSince)
	for _, pm := range [][2]string{{"openai", "gpt-image-1"}, {"azure", "z"}, {"openai", "dall-e-3"}, {"azure", "a"}} {
		attemptOK(pm[0], pm[1], 1, time.Second, 1)(r)
	}

	got := r.snapshot()

	var names []string
	for _, p := range got.Providers {
		names = append(names, p.Provider+"/"+p.Model)
	}
	assert.Equal(t, []string{"azure/a", "azure/z", "openai/dall-e-3", "openai/gpt-image-1"}, names)
}

func TestStatsRecorderSeriesCap(t *testing.T) {
	t.Run("small cap", func(t *testing.T) {
		r := newStatsRecorder(statsTestSince)
		r.maxSeries = 3
		for i := range 5 {
			attemptOK("p", fmt.Sprintf("m%d", i), 1, time.Second, 1)(r)
		}
		attemptOK("p", "m0", 1, time.Second, 1)(r)
		attemptOK("p", "m9", 1, time.Second, 1)(r)

		got := r.snapshot()

		require.Len(t, got.Providers, 4)
		byName := map[string]int64{}
		for _, p := range got.Providers {
			byName[p.Provider+"/"+p.Model] = p.Attempts
		}
		assert.Equal(t, map[string]int64{"p/m0": 2, "p/m1": 1, "p/m2": 1, "other/other": 3}, byName)
		assert.Equal(t, int64(7), got.Totals.Attempts)
	})
	t.Run("default cap", func(t *testing.T) {
		r := newStatsRecorder(statsTestSince)
		for i := range statsMaxSeries + 50 {
			attemptOK("p", fmt.Sprintf("model-%04d", i), 1, time.Second, 1)(r)
		}

		got := r.snapshot()

		assert.Len(t, got.Providers, statsMaxSeries+1)
		last := got.Providers[0]
		for _, p := range got.Providers {
			if p.Provider == StatsOverflowName {
				last = p
			}
		}
		assert.Equal(t, StatsOverflowName, last.Model)
		assert.Equal(t, int64(50), last.Attempts)
	})
}

// TestStatsSnapshotConsistent records whole calls from several goroutines
// while another takes snapshots, and checks that every snapshot satisfies
// the identities that each record call preserves.
func TestStatsSnapshotConsistent(t *testing.T) {
	const writers, callsPerWriter = 4, 500
	r := newStatsRecorder(statsTestSince)
	models := []string{"gpt-image-1", "dall-e-3"}

	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range callsPerWriter {
				model := models[(w+i)%len(models)]
				r.recordCacheMiss()
				attemptFailed("openai", model, 1, 100*time.Millisecond, ClassRateLimited)(r)
				retried("openai", model, 1, ClassRateLimited)(r)
				if i%5 == 0 {
					attemptFailed("openai", model, 2, time.Second, ClassServer)(r)
					fellBack("openai", model, "azure", model, ClassServer)(r)
					attemptFailed("azure", model, 1, time.Second, ClassServer)(r)
					doneFailed("azure", model, 3*time.Second, ClassServer)(r)
					continue
				}
				attemptOK("openai", model, 2, time.Duration(i+1)*time.Millisecond, 1)(r)
				doneOK("openai", model, time.Duration(i+2)*time.Millisecond, Result{Cost: Cost{USD: 0.01, Known: true}})(r)
			}
		}()
	}

	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	snapshots := 0
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		s := r.snapshot()
		snapshots++
		checkStatsIdentities(t, s)
	}
	t.Logf("%d snapshots checked", snapshots)

	final := r.snapshot()
	checkStatsIdentities(t, final)
	total := int64(writers * callsPerWriter)
	fallbacks := int64(writers * (callsPerWriter / 5))
	assert.Equal(t, total, final.Totals.Calls)
	assert.Equal(t, total-fallbacks, final.Totals.Successes)
	assert.Equal(t, fallbacks, final.Totals.Fallbacks)
	assert.Equal(t, total, final.Totals.RateLimited)
	assert.Equal(t, total, final.Cache.Misses)
	assert.InDelta(t, 0.01*float64(total-fallbacks), final.Totals.CostUSD, 1e-9)
}

func checkStatsIdentities(t *testing.T, s Stats) {
	t.Helper()
	for _, p := range s.Providers {
		require.Equal(t, p.Calls, p.Successes+p.Failures, "%s/%s calls", p.Provider, p.Model)
		require.Equal(t, p.Attempts, p.Successes+p.FailedAttempts, "%s/%s attempts", p.Provider, p.Model)
		require.Equal(t, p.Failures, p.FailuresByClass.Total(), "%s/%s failures by class", p.Provider, p.Model)
		require.Equal(t, p.FailedAttempts, p.AttemptFailuresByClass.Total(), "%s/%s failed attempts by class", p.Provider, p.Model)
		require.Equal(t, p.Successes, p.Latency.Count, "%s/%s latency count", p.Provider, p.Model)
		require.Equal(t, p.RateLimited, p.AttemptFailuresByClass.Count(ClassRateLimited), "%s/%s rate limited", p.Provider, p.Model)
	}
	require.Equal(t, s.Totals.Calls, s.Totals.Successes+s.Totals.Failures, "total calls")
	require.Equal(t, s.Totals.Failures, s.Totals.FailuresByClass.Total(), "total failures by class")
	require.Equal(t, s.Totals.Successes, s.Totals.Latency.Count, "total latency count")
}

func TestStatsRates(t *testing.T) {
	assert.Zero(t, ProviderStats{}.SuccessRate())
	assert.InDelta(t, 0.75, ProviderStats{Calls: 4, Successes: 3}.SuccessRate(), 1e-12)
	assert.Zero(t, TotalStats{}.SuccessRate())
	assert.InDelta(t, 0.5, TotalStats{Calls: 2, Successes: 1}.SuccessRate(), 1e-12)
	assert.Zero(t, CacheStats{Errors: 3}.HitRate())
	assert.InDelta(t, 0.25, CacheStats{Hits: 1, Misses: 3}.HitRate(), 1e-12)
}

func TestClassCountsCount(t *testing.T) {
	cc := classCounts(map[Class]int64{ClassServer: 2, ClassCanceled: 1})

	assert.Equal(t, int64(2), cc.Count(ClassServer))
	assert.Equal(t, int64(1), cc.Count(ClassCanceled))
	assert.Zero(t, cc.Count(Class(-1)))
	assert.Zero(t, cc.Count(Class(len(Classes()))))
	assert.Equal(t, int64(3), cc.Total())
	assert.Len(t, cc, len(Classes()))
}
