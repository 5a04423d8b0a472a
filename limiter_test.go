package imagegen

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagegen-go/imagegen/provider"
)

var (
	testKey      = LimitKey{Provider: "openai"}
	testModelKey = LimitKey{Provider: "openai", Model: "gpt-image-2"}
)

// acquireResult is what one asynchronous Acquire returned, and when.
type acquireResult struct {
	index   int
	at      time.Duration
	err     error
	release func()
}

// acquireAsync calls Acquire in a new goroutine and sends the result, with
// the time since start, on results.
func acquireAsync(ctx context.Context, l *LocalLimiter, key LimitKey, images, index int, start time.Time, results chan<- acquireResult) {
	go func() {
		release, err := l.Acquire(ctx, key, images)
		results <- acquireResult{index: index, at: time.Since(start), err: err, release: release}
	}()
}

// startWaiters starts n asynchronous Acquire calls for one image under key,
// each after the previous one has blocked, so that they arrive in index order.
func startWaiters(ctx context.Context, l *LocalLimiter, key LimitKey, n int, start time.Time) <-chan acquireResult {
	results := make(chan acquireResult, n)
	for i := range n {
		acquireAsync(ctx, l, key, 1, i, start, results)
		synctest.Wait()
	}
	return results
}

// acquireAt calls Acquire and returns how long after start it returned.
func acquireAt(t *testing.T, l *LocalLimiter, key LimitKey, images int, start time.Time) time.Duration {
	t.Helper()
	release, err := l.Acquire(t.Context(), key, images)
	require.NoError(t, err)
	release()
	return time.Since(start)
}

func newLimiterWith(t *testing.T, key LimitKey, lim Limits) *LocalLimiter {
	t.Helper()
	l := NewLocalLimiter()
	require.NoError(t, l.SetLimits(key, lim))
	return l
}

func rateLimited(retryAfter time.Duration) LimitFeedback {
	return LimitFeedback{Class: ClassRateLimited, RetryAfter: retryAfter, Images: 1}
}

func TestLocalLimiterPacesRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiterWith(t, testKey, Limits{RequestsPerMinute: 60})
		start := time.Now()

		for i := range 5 {
			assert.Equal(t, time.Duration(i)*time.Second, acquireAt(t, l, testKey, 1, start), "request %d", i)
		}
	})
}

func TestLocalLimiterPacesConcurrentWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiterWith(t, testKey, Limits{RequestsPerMinute: 120, RequestBurst: 3})
		start := time.Now()
		results := startWaiters(t.Context(), l, testKey, 7, start)

		// Three tokens of burst at once, then one every half second.
		want := []time.Duration{0, 0, 0, 500 * time.Millisecond, time.Second, 1500 * time.Millisecond, 2 * time.Second}
		for range want {
			r := <-results
			require.NoError(t, r.err)
			assert.Equal(t, want[r.index], r.at, "waiter %d", r.index)
			r.release()
		}
	})
}

func TestLocalLimiterChargesImages(t *testing.T) {
	tests := []struct {
		name   string
		limits Limits
		images []int
		want   []time.Duration
	}{
		{
			name:   "default burst",
			limits: Limits{ImagesPerMinute: 60},
			images: []int{3, 1, 2},
			want:   []time.Duration{2 * time.Second, 3 * time.Second, 5 * time.Second},
		},
		{
			name:   "burst of four",
			limits: Limits{ImagesPerMinute: 60, ImageBurst: 4},
			images: []int{3, 2, 1},
			want:   []time.Duration{0, time.Second, 2 * time.Second},
		},
		{
			name:   "zero images count as one",
			limits: Limits{ImagesPerMinute: 60},
			images: []int{0, -2, 1},
			want:   []time.Duration{0, time.Second, 2 * time.Second},
		},
		{
			name:   "requests and images both limit",
			limits: Limits{RequestsPerMinute: 30, ImagesPerMinute: 60, ImageBurst: 10},
			images: []int{4, 4, 4, 1},
			want:   []time.Duration{0, 2 * time.Second, 4 * time.Second, 6 * time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := newLimiterWith(t, testKey, tt.limits)
				start := time.Now()
				for i, n := range tt.images {
					assert.Equal(t, tt.want[i], acquireAt(t, l, testKey, n, start), "request %d for %d images", i, n)
				}
			})
		})
	}
}

func TestLocalLimiterRejectsHugeImageCount(t *testing.T) {
	l := newLimiterWith(t, testKey, Limits{ImagesPerMinute: 60})

	release, err := l.Acquire(t.Context(), testKey, limiterMaxImages+1)

	assert.Nil(t, release)
	var v *ValidationError
	require.ErrorAs(t, err, &v)
	assert.Equal(t, "n", v.Field)
	assert.ErrorIs(t, err, ErrInvalidRequest)
}

func TestLocalLimiterDeadlineFailsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiterWith(t, testModelKey, Limits{RequestsPerMinute: 60})
		start := time.Now()
		require.Equal(t, time.Duration(0), acquireAt(t, l, testModelKey, 1, start))

		for _, timeout := range []time.Duration{500 * time.Millisecond, time.Second} {
			ctx, cancel := context.WithTimeout(t.Context(), timeout)
			release, err := l.Acquire(ctx, testModelKey, 1)
			cancel()

			assert.Nil(t, release)
			assert.Equal(t, time.Duration(0), time.Since(start), "returned after a sleep")
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, ClassRateLimited, e.Class)
			assert.Equal(t, time.Second, e.RetryAfter)
			assert.Equal(t, "openai", e.Provider)
			assert.Equal(t, "gpt-image-2", e.Model)
			assert.Contains(t, e.Message, "local limiter")
			assert.ErrorIs(t, err, ErrRateLimited)
			assert.NotErrorIs(t, err, context.DeadlineExceeded)
		}

		// The failed attempts gave their tokens back.
		assert.Equal(t, time.Second, acquireAt(t, l, testModelKey, 1, start))
	})
}

func TestLocalLimiterDeadlineAfterWaitSucceeds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiterWith(t, testKey, Limits{RequestsPerMinute: 60})
		start := time.Now()
		acquireAt(t, l, testKey, 1, start)

		ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
		defer cancel()
		release, err := l.Acquire(ctx, testKey, 1)

		require.NoError(t, err)
		release()
		assert.Equal(t, time.Second, time.Since(start))
	})
}

func TestLocalLimiterCancelRefundsTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiterWith(t, testKey, Limits{RequestsPerMinute: 60})
		start := time.Now()
		require.Equal(t, time.Duration(0), acquireAt(t, l, testKey, 1, start))

		ctx, cancel := context.WithCancel(t.Context())
		results := make(chan acquireResult, 1)
		acquireAsync(ctx, l, testKey, 1, 0, start, results)
		time.Sleep(500 * time.Millisecond)
		cancel()
		canceled := <-results

		assert.Nil(t, canceled.release)
		assert.Equal(t, 500*time.Millisecond, canceled.at)
		assert.ErrorIs(t, canceled.err, context.Canceled)
		// The cancelled waiter's slot at 1 s goes to the next caller, not 2 s.
		assert.Equal(t, time.Second, acquireAt(t, l, testKey, 1, start))
	})
}

func TestLocalLimiterCancelledContext(t *testing.T) {
	l := newLimiterWith(t, testKey, Limits{RequestsPerMinute: 60})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	release, err := l.Acquire(ctx, testKey, 1)

	assert.Nil(t, release)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestLocalLimiterServesTokenWaitersInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const waiters = 50
		l := newLimiterWith(t, testKey, Limits{RequestsPerMinute: 60})
		start := time.Now()
		results := startWaiters(t.Context(), l, testKey, waiters, start)

		for want := range waiters {
			r := <-results
			require.NoError(t, r.err)
			assert.Equal(t, want, r.index, "completion order")
			assert.Equal(t, time.Duration(want)*time.Second, r.at, "waiter %d", r.index)
			r.release()
		}
	})
}

func TestLocalLimiterServesSlotWaitersInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const waiters = 50
		l := newLimiterWith(t, testKey, Limits{MaxInFlight: 1})
		holder, err := l.Acquire(t.Context(), testKey, 1)
		require.NoError(t, err)

		var (
			mu    sync.Mutex
			order []int
			wg    sync.WaitGroup
		)
		for i := range waiters {
			wg.Go(func() {
				release, err := l.Acquire(t.Context(), testKey, 1)
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				release()
			})
			synctest.Wait()
		}
		holder()
		wg.Wait()

		want := make([]int, waiters)
		for i := range want {
			want[i] = i
		}
		assert.Equal(t, want, order)
	})
}

func TestLocalLimiterCapsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiterWith(t, testKey, Limits{MaxInFlight: 2})
		first, err := l.Acquire(t.Context(), testKey, 1)
		require.NoError(t, err)
		second, err := l.Acquire(t.Context(), testKey, 1)
		require.NoError(t, err)

		start := time.Now()
		results := make(chan acquireResult, 1)
		acquireAsync(t.Context(), l, testKey, 1, 0, start, results)
		synctest.Wait()
		select {
		case r := <-results:
			t.Fatalf("third request admitted with two in flight: %+v", r)
		default:
		}

		// A caller with a deadline gives up when it passes.
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		_, err = l.Acquire(ctx, testKey, 1)
		cancel()
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 3*time.Second, time.Since(start))

		// Releasing twice frees one slot only.
		first()
		first()
		third := <-results
		require.NoError(t, third.err)
		synctest.Wait()
		ctx, cancel = context.WithTimeout(t.Context(), time.Second)
		_, err = l.Acquire(ctx, testKey, 1)
		cancel()
		assert.ErrorIs(t, err, context.DeadlineExceeded, "a fourth request was admitted")

		second()
		third.release()
	})
}

func TestLocalLimiterPausesEveryCaller(t *testing.T) {
	spent := provider.Quota{Known: true, Limit: 60, Remaining: 0, Reset: 10 * time.Second}
	tests := []struct {
		name     string
		feedback LimitFeedback
	}{
		{"429 with Retry-After", rateLimited(10 * time.Second)},
		{"success with no requests remaining", LimitFeedback{Success: true, RateLimit: provider.RateLimit{Requests: spent}}},
		{"success with no tokens remaining", LimitFeedback{Success: true, RateLimit: provider.RateLimit{Tokens: spent}}},
		{"server error with Retry-After", LimitFeedback{Class: ClassServer, RetryAfter: 10 * time.Second}},
		{"429 with headers only", LimitFeedback{Class: ClassRateLimited, RateLimit: provider.RateLimit{Requests: spent}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := newLimiterWith(t, testKey, Limits{RequestsPerMinute: 60})
				start := time.Now()
				require.Equal(t, time.Duration(0), acquireAt(t, l, testKey, 1, start))
				results := make(chan acquireResult, 1)
				acquireAsync(t.Context(), l, testKey, 1, 0, start, results)
				synctest.Wait()

				l.Observe(testKey, tt.feedback)

				queued := <-results
				require.NoError(t, queued.err)
				queued.release()
				assert.Equal(t, 10*time.Second, queued.at, "caller queued before the pause")
				assert.Equal(t, 11*time.Second, acquireAt(t, l, testKey, 1, start), "caller arriving after the pause")
				assert.Equal(t, start.Add(10*time.Second), l.State(testKey).PausedUntil)
			})
		})
	}
}

func TestLocalLimiterPausesUnconfiguredKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLocalLimiter()
		start := time.Now()
		require.Equal(t, time.Duration(0), acquireAt(t, l, testModelKey, 1, start))

		l.Observe(testModelKey, rateLimited(3*time.Second))

		// Every caller of the provider, whatever the unconfigured model,
		// waits for the pause and then goes at once: there is no rate to pace by.
		keys := []LimitKey{testModelKey, testModelKey, testKey, {Provider: "openai", Model: "other"}}
		results := make(chan acquireResult, len(keys))
		for i, key := range keys {
			acquireAsync(t.Context(), l, key, 1, i, start, results)
		}
		for range keys {
			r := <-results
			require.NoError(t, r.err)
			assert.Equal(t, 3*time.Second, r.at, "waiter %d", r.index)
			r.release()
		}
		assert.Equal(t, 3*time.Second, acquireAt(t, l, testModelKey, 1, start), "pause over")
		assert.Equal(t, time.Duration(0), acquireAt(t, l, LimitKey{Provider: "azure"}, 1, start.Add(3*time.Second)),
			"another provider is not paused")
	})
}

func TestLocalLimiterDefaultPauseWithoutHint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLocalLimiter()
		start := time.Now()

		l.Observe(testKey, rateLimited(0))

		assert.Equal(t, limiterDefaultPause, acquireAt(t, l, testKey, 1, start))
	})
}

func TestLocalLimiterCapsPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLocalLimiter()
		start := time.Now()

		l.Observe(testKey, rateLimited(24*time.Hour))

		assert.Equal(t, limiterMaxPause, acquireAt(t, l, testKey, 1, start))
	})
}

func TestLocalLimiterIgnoresQuotaErrors(t *testing.T) {
	spent := provider.RateLimit{Requests: provider.Quota{Known: true, Remaining: 0, Reset: time.Minute}}
	for _, class := range []Class{ClassQuotaExceeded, ClassNotEntitled} {
		t.Run(class.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := newLimiterWith(t, testKey, Limits{RequestsPerMinute: 60})
				start := time.Now()

				for range 3 {
					l.Observe(testKey, LimitFeedback{Class: class, RetryAfter: time.Minute, RateLimit: spent})
				}

				assert.Equal(t, time.Duration(0), acquireAt(t, l, testKey, 1, start))
				assert.Equal(t, time.Second, acquireAt(t, l, testKey, 1, start))
				state := l.State(testKey)
				assert.True(t, state.PausedUntil.IsZero())
				assert.Equal(t, 1.0, state.RateFraction)
			})
		})
	}
}

func TestLocalLimiterIgnoresHeadersWithQuotaLeft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLocalLimiter()
		start := time.Now()
		left := provider.RateLimit{Requests: provider.Quota{Known: true, Limit: 60, Remaining: 1, Reset: time.Minute}}

		l.Observe(testKey, LimitFeedback{Success: true, RateLimit: left})
		l.Observe(testKey, LimitFeedback{Success: true, RateLimit: provider.RateLimit{Requests: provider.Quota{Remaining: 0, Reset: time.Minute}}})

		assert.Equal(t, time.Duration(0), acquireAt(t, l, testKey, 1, start))
	})
}

func TestLocalLimiterReleasesAtRateAfterPause(t *testing.T) {
	t.Run("queued before the pause", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := newLimiterWith(t, testKey, Limits{RequestsPerMinute: 60})
			start := time.Now()
			results := startWaiters(t.Context(), l, testKey, 5, start)
			first := <-results
			require.Equal(t, time.Duration(0), first.at)
			first.release()

			time.Sleep(500 * time.Millisecond)
			l.Observe(testKey, rateLimited(10*time.Second))

			// The queue keeps its order and spacing behind the pause.
			for i := 1; i < 5; i++ {
				r := <-results
				require.NoError(t, r.err)
				assert.Equal(t, i, r.index)
				assert.Equal(t, 10500*time.Millisecond+time.Duration(i-1)*time.Second, r.at, "waiter %d", r.index)
				r.release()
			}
		})
	})

	t.Run("full burst before the pause", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := newLimiterWith(t, testKey, Limits{RequestsPerMinute: 60, RequestBurst: 5})
			time.Sleep(time.Minute) // the bucket fills up
			start := time.Now()

			l.Observe(testKey, rateLimited(10*time.Second))

			results := startWaiters(t.Context(), l, testKey, 5, start)
			for i := range 5 {
				r := <-results
				require.NoError(t, r.err)
				assert.Equal(t, 10*time.Second+time.Duration(i)*time.Second, r.at, "waiter %d", r.index)
				r.release()
			}
		})
	})

	t.Run("partly refilled bucket", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := newLimiterWith(t, testKey, Limits{RequestsPerMinute: 60})
			start := time.Now()
			acquireAt(t, l, testKey, 1, start)
			time.Sleep(250 * time.Millisecond)

			l.Observe(testKey, rateLimited(100*time.Millisecond))

			// The next token was due at 1 s anyway: the short pause costs nothing.
			assert.Equal(t, time.Second, acquireAt(t, l, testKey, 1, start))
		})
	})
}

func TestLocalLimiterSlowsDownOnRepeated429s(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiterWith(t, testKey, Limits{RequestsPerMinute: 60})
		start := time.Now()

		steps := []struct {
			at   time.Duration
			want float64
		}{
			{0, 1},                              // first 429: pause only
			{time.Second, 1},                    // same burst as the first
			{3 * time.Second, 0.5},              // repeated within a minute
			{5 * time.Second, 0.25},             // again
			{7 * time.Second, 0.125},            // again, reaching the default floor
			{9 * time.Second, 0.125},            // floor holds
			{2 * time.Minute, 0.125 + 1.0/16*7}, // a lone 429 does not halve; 7 recovery steps since 7 s
		}
		for _, s := range steps {
			time.Sleep(time.Until(start.Add(s.at)))
			l.Observe(testKey, rateLimited(time.Millisecond))
			assert.Equal(t, s.want, l.State(testKey).RateFraction, "after the 429 at %v", s.at)
		}

		time.Sleep(time.Until(start.Add(7*time.Second + 14*limiterRecoveryStep)))
		assert.Equal(t, 1.0, l.State(testKey).RateFraction, "whole again after 14 steps")
	})
}

func TestLocalLimiterSpacingFollowsSlowDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiterWith(t, testKey, Limits{RequestsPerMinute: 60})
		l.Observe(testKey, rateLimited(time.Millisecond))
		time.Sleep(3 * time.Second)
		l.Observe(testKey, rateLimited(time.Millisecond))
		require.Equal(t, 0.5, l.State(testKey).RateFraction)
		time.Sleep(10 * time.Second) // let the bucket fill

		start := time.Now()
		var got []time.Duration
		for range 4 {
			got = append(got, acquireAt(t, l, testKey, 1, start))
		}

		// Half speed spaces requests 2 s apart. The first recovery step, 15 s
		// after the halving (5 s after start), raises the speed to 9/16 while
		// the fourth request waits: its last virtual half second then takes
		// 8/9 s instead of 1 s.
		assert.Equal(t, []time.Duration{0, 2 * time.Second, 4 * time.Second, 5*time.Second + 888888888}, got)
	})
}

func TestLocalLimiterSlowDownStretchesQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiterWith(t, testKey, Limits{RequestsPerMinute: 60})
		l.Observe(testKey, rateLimited(time.Millisecond))
		time.Sleep(10 * time.Second)
		start := time.Now()
		results := startWaiters(t.Context(), l, testKey, 4, start)
		first := <-results
		require.Equal(t, time.Duration(0), first.at)
		first.release()

		// A repeated 429 without a wait of its own halves the pace of the queue.
		l.Observe(testKey, LimitFeedback{Class: ClassRateLimited, RetryAfter: time.Nanosecond})
		require.Equal(t, 0.5, l.State(testKey).RateFraction)

		for i := 1; i < 4; i++ {
			r := <-results
			require.NoError(t, r.err)
			assert.Equal(t, time.Duration(i)*2*time.Second, r.at, "waiter %d", r.index)
			r.release()
		}
	})
}

func TestLocalLimiterRecoveryWakesQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiterWith(t, testKey, Limits{RequestsPerMinute: 60, MinRateFraction: 0.5})
		l.Observe(testKey, rateLimited(time.Nanosecond))
		time.Sleep(3 * time.Second)
		l.Observe(testKey, rateLimited(time.Nanosecond))
		start := time.Now()
		acquireAt(t, l, testKey, 1, start)
		results := startWaiters(t.Context(), l, testKey, 30, start)

		// At half speed the last waiter is due at 60 s. A recovery step at
		// 15 s speeds the clock up and the queue with it.
		time.Sleep(limiterRecoveryStep)
		require.Equal(t, 0.5+limiterRecoveryIncrement, l.State(testKey).RateFraction)

		var last acquireResult
		for range 30 {
			last = <-results
			require.NoError(t, last.err)
			last.release()
		}
		assert.Equal(t, 29, last.index)
		assert.Less(t, last.at, 60*time.Second)
	})
}

func TestLocalLimiterKeepsRate(t *testing.T) {
	tests := []struct {
		name   string
		limits *Limits // nil leaves the key unconfigured
	}{
		{"fraction one", &Limits{RequestsPerMinute: 60, MinRateFraction: 1}},
		{"unconfigured key", nil},
		{"no rates", &Limits{MaxInFlight: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := NewLocalLimiter()
				if tt.limits != nil {
					require.NoError(t, l.SetLimits(testKey, *tt.limits))
				}

				for range 5 {
					l.Observe(testKey, rateLimited(time.Millisecond))
					time.Sleep(3 * time.Second)
				}

				assert.Equal(t, 1.0, l.State(testKey).RateFraction)
			})
		})
	}
}

func TestLocalLimiterModelEntry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLocalLimiter()
		require.NoError(t, l.SetLimits(testKey, Limits{RequestsPerMinute: 120}))
		require.NoError(t, l.SetLimits(testModelKey, Limits{ImagesPerMinute: 30}))
		other := LimitKey{Provider: "openai", Model: "gpt-image-2.6-flare"}
		start := time.Now()

		// The model waits for both entries; another model shares only the provider's.
		assert.Equal(t, time.Duration(0), acquireAt(t, l, testModelKey, 1, start))
		assert.Equal(t, 500*time.Millisecond, acquireAt(t, l, other, 1, start))
		assert.Equal(t, 2*time.Second, acquireAt(t, l, testModelKey, 1, start))
		// The model's provider token was due at 1 s, so the provider bucket
		// has refilled by 2 s: the two requests go together.
		assert.Equal(t, 2*time.Second, acquireAt(t, l, other, 1, start))

		// Feedback on the configured model pauses that model only.
		l.Observe(testModelKey, rateLimited(time.Minute))
		assert.Equal(t, 2500*time.Millisecond, acquireAt(t, l, other, 1, start))
		assert.Equal(t, start.Add(2*time.Second+time.Minute), l.State(testModelKey).PausedUntil)
		assert.True(t, l.State(testKey).PausedUntil.IsZero())

		// Feedback on an unconfigured model pauses the provider-wide entry.
		l.Observe(other, rateLimited(10*time.Second))
		assert.Equal(t, start.Add(12500*time.Millisecond), l.State(testKey).PausedUntil)
		assert.Equal(t, 12500*time.Millisecond, acquireAt(t, l, other, 1, start))
	})
}

func TestLocalLimiterSetLimitsReplaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiterWith(t, testKey, Limits{RequestsPerMinute: 60})
		start := time.Now()
		acquireAt(t, l, testKey, 1, start)

		require.NoError(t, l.SetLimits(testKey, Limits{RequestsPerMinute: 120}))
		assert.Equal(t, 500*time.Millisecond, acquireAt(t, l, testKey, 1, start))

		require.NoError(t, l.SetLimits(testKey, Limits{}))
		assert.Equal(t, 500*time.Millisecond, acquireAt(t, l, testKey, 1, start))
		assert.Equal(t, Limits{}, l.State(testKey).Limits)
	})
}

func TestLimitsValidation(t *testing.T) {
	tests := []struct {
		name   string
		key    LimitKey
		limits Limits
		want   string
	}{
		{"negative rate", testKey, Limits{RequestsPerMinute: -1}, "RequestsPerMinute is -1"},
		{"NaN rate", testKey, Limits{ImagesPerMinute: math.NaN()}, "ImagesPerMinute is NaN"},
		{"infinite rate", testKey, Limits{ImagesPerMinute: math.Inf(1)}, "ImagesPerMinute is +Inf"},
		{"tiny rate", testKey, Limits{RequestsPerMinute: 0.001}, "at least 0.01 per minute"},
		{"negative in-flight cap", testKey, Limits{MaxInFlight: -1}, "MaxInFlight is -1"},
		{"negative burst", testKey, Limits{RequestBurst: -2}, "RequestBurst is -2"},
		{"negative image burst", testKey, Limits{ImageBurst: -3}, "ImageBurst is -3"},
		{"fraction above one", testKey, Limits{MinRateFraction: 2}, "MinRateFraction is 2"},
		{"negative fraction", testKey, Limits{MinRateFraction: -0.5}, "MinRateFraction is -0.5"},
		{"empty provider", LimitKey{Model: "gpt-image-2"}, Limits{}, "provider name is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLocalLimiter()

			err := l.SetLimits(tt.key, tt.limits)

			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), "imagegen: invalid")
			assert.Equal(t, Limits{}, l.State(tt.key).Limits, "invalid limits were applied")
		})
	}
}

func TestOpenAITier(t *testing.T) {
	tests := []struct {
		tier int
		want float64
	}{
		{1, 5}, {2, 20}, {3, 50}, {4, 150}, {5, 250},
	}
	for _, tt := range tests {
		t.Run("tier "+strconv.Itoa(tt.tier), func(t *testing.T) {
			lim, err := OpenAITier(tt.tier)

			require.NoError(t, err)
			assert.Equal(t, Limits{ImagesPerMinute: tt.want}, lim)
		})
	}

	for _, tier := range []int{-1, 0, 6} {
		_, err := OpenAITier(tier)
		assert.ErrorContains(t, err, "invalid OpenAI usage tier", "tier %d", tier)
	}
}

func TestOpenAITierPacesNewAccount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim, err := OpenAITier(1)
		require.NoError(t, err)
		l := newLimiterWith(t, testModelKey, lim)
		start := time.Now()

		// Five images per minute is one every 12 s, not five at once.
		for i := range 5 {
			assert.Equal(t, time.Duration(i)*12*time.Second, acquireAt(t, l, testModelKey, 1, start), "image %d", i)
		}
	})
}

func TestLocalLimiterZeroValue(t *testing.T) {
	var l LocalLimiter

	release, err := l.Acquire(t.Context(), testKey, 1)
	require.NoError(t, err)
	release()
	l.Observe(testKey, LimitFeedback{Success: true})

	assert.Equal(t, LimitState{RateFraction: 1}, l.State(testKey))
}

func TestLimitKeyString(t *testing.T) {
	assert.Equal(t, "openai", testKey.String())
	assert.Equal(t, "openai/gpt-image-2", testModelKey.String())
}

func TestLocalLimiterLogs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		l := NewLocalLimiter(WithLimiterLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))))
		require.NoError(t, l.SetLimits(testKey, Limits{RequestsPerMinute: 60}))

		l.Observe(testKey, rateLimited(time.Second))
		time.Sleep(3 * time.Second)
		l.Observe(testKey, rateLimited(time.Second))

		assert.Contains(t, buf.String(), "rate limiter paused")
		assert.Contains(t, buf.String(), "rate limiter slowed down")
		assert.Contains(t, buf.String(), "rate_fraction=0.5")
	})
}

func TestLocalLimiterConcurrentUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLocalLimiter()
		require.NoError(t, l.SetLimits(testKey, Limits{RequestsPerMinute: 600, ImagesPerMinute: 1200, MaxInFlight: 4}))
		require.NoError(t, l.SetLimits(testModelKey, Limits{ImagesPerMinute: 600}))
		keys := []LimitKey{testKey, testModelKey, {Provider: "openai", Model: "other"}, {Provider: "azure"}}

		var wg sync.WaitGroup
		for i := range 40 {
			wg.Go(func() {
				key := keys[i%len(keys)]
				ctx, cancel := context.WithTimeout(t.Context(), time.Duration(i%7+1)*time.Second)
				defer cancel()
				for j := range 10 {
					release, err := l.Acquire(ctx, key, j%3+1)
					if err != nil {
						var e *Error
						if !errors.As(err, &e) && !errors.Is(err, context.DeadlineExceeded) {
							t.Errorf("unexpected error: %v", err)
						}
						return
					}
					time.Sleep(50 * time.Millisecond)
					release()
					switch j % 4 {
					case 0:
						l.Observe(key, LimitFeedback{Success: true})
					case 1:
						l.Observe(key, rateLimited(100*time.Millisecond))
					case 2:
						l.Observe(key, LimitFeedback{Class: ClassQuotaExceeded})
					default:
						_ = l.State(key)
					}
				}
			})
		}
		wg.Go(func() {
			for i := range 20 {
				assert.NoError(t, l.SetLimits(testKey, Limits{RequestsPerMinute: float64(300 + i*30), MaxInFlight: 2 + i%3}))
				time.Sleep(100 * time.Millisecond)
			}
		})
		wg.Wait()

		for _, key := range keys {
			release, err := l.Acquire(t.Context(), key, 1)
			require.NoError(t, err, "key %v", key)
			release()
		}
	})
}

func TestLocalLimiterRecoveryWithoutOtherCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLocalLimiter()
		require.NoError(t, l.SetLimits(testKey, Limits{RequestsPerMinute: 1}))
		for range 4 {
			l.Observe(testKey, rateLimited(time.Nanosecond))
			time.Sleep(3 * time.Second)
		}
		require.Equal(t, 0.125, l.State(testKey).RateFraction)

		start := time.Now()
		_, err := l.Acquire(t.Context(), testKey, 1)
		require.NoError(t, err)
		_, err = l.Acquire(t.Context(), testKey, 1)
		require.NoError(t, err)

		// At 1/8 speed the second request would wait 8 minutes. The rate
		// recovers by 1/16 every 15 seconds while the waiter sleeps, with no
		// other call to drive it, so the request goes well before that.
		assert.Less(t, time.Since(start), 3*time.Minute)
		assert.Greater(t, time.Since(start), time.Minute)
	})
}

func TestLocalLimiterTinyFloorKeepsPacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLocalLimiter()
		require.NoError(t, l.SetLimits(testKey, Limits{RequestsPerMinute: 60, MinRateFraction: 1e-15}))
		for range 40 {
			l.Observe(testKey, rateLimited(time.Nanosecond))
			time.Sleep(3 * time.Second)
		}

		start := time.Now()
		_, err := l.Acquire(t.Context(), testKey, 1)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
		defer cancel()
		_, err = l.Acquire(ctx, testKey, 1)

		assert.ErrorIs(t, err, ErrRateLimited, "an extreme slow-down waits, it does not overflow into no wait")
		assert.Less(t, time.Since(start), time.Second)
	})
}

func TestLocalLimiterPauseEndsWaitPastDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiterWith(t, testKey, Limits{RequestsPerMinute: 60})
		start := time.Now()
		_, err := l.Acquire(t.Context(), testKey, 1)
		require.NoError(t, err)

		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		done := make(chan error)
		go func() {
			_, err := l.Acquire(ctx, testKey, 1)
			done <- err
		}()
		time.Sleep(500 * time.Millisecond)
		l.Observe(testKey, rateLimited(time.Minute))
		err = <-done

		assert.ErrorIs(t, err, ErrRateLimited, "the pause moves the send past the deadline")
		assert.Equal(t, 500*time.Millisecond, time.Since(start), "the waiter gives up when the pause starts, not at its old due time")
	})
}
