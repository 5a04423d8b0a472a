package redislimit_test

// These tests run against a real redis-server. Redis keeps its own clock, so
// they run in real time: timing checks are lower bounds, and counts are taken
// against waits of a minute or more that no test reaches.

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/internal/redistest"
	"github.com/imagegen-go/imagegen/limiter/redislimit"
	"github.com/imagegen-go/imagegen/provider"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var testKey = imagegen.LimitKey{Provider: "openai"}

// newTestClient starts a redis-server and returns a client for it that is
// closed when the test ends.
func newTestClient(t testing.TB) *redis.Client {
	t.Helper()
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// newTestLimiter returns a Limiter on client with lim set for each key.
func newTestLimiter(t testing.TB, client redis.UniversalClient, opts redislimit.Options, lim imagegen.Limits, keys ...imagegen.LimitKey) *redislimit.Limiter {
	t.Helper()
	l, err := redislimit.New(client, opts)
	require.NoError(t, err)
	for _, key := range keys {
		require.NoError(t, l.SetLimits(key, lim))
	}
	return l
}

// acquireWithin calls Acquire with a context that ends after timeout.
func acquireWithin(l *redislimit.Limiter, key imagegen.LimitKey, images int, timeout time.Duration) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return l.Acquire(ctx, key, images)
}

// requireRateLimited asserts that err is the limiter's deadline error and
// returns its RetryAfter.
func requireRateLimited(t *testing.T, err error) time.Duration {
	t.Helper()
	var e *imagegen.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, imagegen.ClassRateLimited, e.Class)
	assert.ErrorIs(t, err, imagegen.ErrRateLimited)
	assert.Positive(t, e.RetryAfter)
	return e.RetryAfter
}

// countGrants acquires under key until the limiter refuses because the wait
// would pass a short deadline, and returns the number of grants.
func countGrants(t *testing.T, limiters []*redislimit.Limiter, key imagegen.LimitKey, images, limit int) int {
	t.Helper()
	for n := 0; n < limit; n++ {
		release, err := acquireWithin(limiters[n%len(limiters)], key, images, 2*time.Second)
		if err != nil {
			requireRateLimited(t, err)
			return n
		}
		release()
	}
	t.Fatalf("the limiters granted %d requests without refusing one", limit)
	return 0
}

func TestNewRejectsBadOptions(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = client.Close() })

	_, err := redislimit.New(nil, redislimit.Options{})
	assert.ErrorContains(t, err, "client is nil")

	_, err = redislimit.New(client, redislimit.Options{LeaseTTL: -time.Second})
	assert.ErrorContains(t, err, "LeaseTTL -1s")
}

func TestSetLimitsValidates(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = client.Close() })
	l, err := redislimit.New(client, redislimit.Options{})
	require.NoError(t, err)

	tests := []struct {
		name string
		key  imagegen.LimitKey
		lim  imagegen.Limits
		want string
	}{
		{"zero limits", testKey, imagegen.Limits{}, ""},
		{"model limits", imagegen.LimitKey{Provider: "openai", Model: "gpt-image-1"}, imagegen.Limits{ImagesPerMinute: 5}, ""},
		{"empty provider", imagegen.LimitKey{}, imagegen.Limits{}, "provider name is empty"},
		{"negative rate", testKey, imagegen.Limits{RequestsPerMinute: -1}, "RequestsPerMinute is -1"},
		{"tiny rate", testKey, imagegen.Limits{ImagesPerMinute: 0.001}, "ImagesPerMinute is 0.001"},
		{"negative in-flight", testKey, imagegen.Limits{MaxInFlight: -2}, "MaxInFlight is -2"},
		{"fraction above one", testKey, imagegen.Limits{MinRateFraction: 2}, "MinRateFraction is 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := l.SetLimits(tt.key, tt.lim)
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

func TestAcquireUnconfiguredKeyIsUnlimited(t *testing.T) {
	client := newTestClient(t)
	l := newTestLimiter(t, client, redislimit.Options{}, imagegen.Limits{})

	for range 50 {
		release, err := acquireWithin(l, testKey, 10, time.Second)
		require.NoError(t, err)
		release()
		release() // extra calls do nothing
	}

	keys, err := client.Keys(t.Context(), "*").Result()
	require.NoError(t, err)
	assert.Empty(t, keys, "an unlimited key writes nothing to Redis")
}

func TestAcquireRejectsTooManyImages(t *testing.T) {
	client := newTestClient(t)
	l := newTestLimiter(t, client, redislimit.Options{}, imagegen.Limits{ImagesPerMinute: 5}, testKey)

	_, err := l.Acquire(t.Context(), testKey, 10_001)

	var v *imagegen.ValidationError
	require.ErrorAs(t, err, &v)
	assert.Equal(t, "n", v.Field)
	assert.ErrorIs(t, err, imagegen.ErrInvalidRequest)
}

// TestAcquireBurstCounts checks the number of requests a full bucket lets
// through. With one token per minute, no test lasts long enough for a
// second token to accrue, so the count is exact.
func TestAcquireBurstCounts(t *testing.T) {
	tests := []struct {
		name   string
		lim    imagegen.Limits
		images int
		want   int
	}{
		{"one request by default", imagegen.Limits{RequestsPerMinute: 1}, 1, 1},
		{"request burst", imagegen.Limits{RequestsPerMinute: 1, RequestBurst: 4}, 1, 4},
		{"image burst of single images", imagegen.Limits{ImagesPerMinute: 1, ImageBurst: 6}, 1, 6},
		{"image burst of three-image requests", imagegen.Limits{ImagesPerMinute: 1, ImageBurst: 6}, 3, 2},
		{"zero images count as one", imagegen.Limits{ImagesPerMinute: 1, ImageBurst: 3}, 0, 3},
		{"request larger than the burst goes alone", imagegen.Limits{ImagesPerMinute: 1, ImageBurst: 2}, 5, 1},
		{"requests bind before images", imagegen.Limits{RequestsPerMinute: 1, RequestBurst: 2, ImagesPerMinute: 1, ImageBurst: 10}, 1, 2},
		{"images bind before requests", imagegen.Limits{RequestsPerMinute: 1, RequestBurst: 10, ImagesPerMinute: 1, ImageBurst: 4}, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newTestClient(t)
			l := newTestLimiter(t, client, redislimit.Options{}, tt.lim, testKey)

			got := countGrants(t, []*redislimit.Limiter{l}, testKey, tt.images, 20)

			assert.Equal(t, tt.want, got)
		})
	}
}

func TestTwoLimitersShareBurst(t *testing.T) {
	client := newTestClient(t)
	lim := imagegen.Limits{RequestsPerMinute: 1, RequestBurst: 5}
	a := newTestLimiter(t, client, redislimit.Options{}, lim, testKey)
	b := newTestLimiter(t, client, redislimit.Options{}, lim, testKey)

	got := countGrants(t, []*redislimit.Limiter{a, b}, testKey, 1, 20)

	assert.Equal(t, 5, got, "two limiters together get one burst, not one each")
}

func TestAcquirePacesRequests(t *testing.T) {
	tests := []struct {
		name     string
		lim      imagegen.Limits
		images   int
		requests int
		minTotal time.Duration
	}{
		// 1200 per minute is one every 50 ms: 6 requests span 5 intervals.
		{"requests", imagegen.Limits{RequestsPerMinute: 1200}, 1, 6, 250 * time.Millisecond},
		// Two images at 1200 per minute take 100 ms each.
		{"images charged per image", imagegen.Limits{ImagesPerMinute: 1200}, 2, 6, 500 * time.Millisecond},
		// The slower bucket, images at 600 per minute, sets the pace.
		{"both buckets", imagegen.Limits{RequestsPerMinute: 2400, ImagesPerMinute: 600}, 1, 5, 400 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newTestClient(t)
			l := newTestLimiter(t, client, redislimit.Options{}, tt.lim, testKey)

			start := time.Now()
			for range tt.requests {
				release, err := acquireWithin(l, testKey, tt.images, 5*time.Second)
				require.NoError(t, err)
				release()
			}

			assert.GreaterOrEqual(t, time.Since(start), tt.minTotal)
		})
	}
}

func TestAcquireChargesImages(t *testing.T) {
	client := newTestClient(t)
	// One image every 100 ms.
	l := newTestLimiter(t, client, redislimit.Options{}, imagegen.Limits{ImagesPerMinute: 600}, testKey)

	start := time.Now()
	release, err := acquireWithin(l, testKey, 4, time.Second)
	require.NoError(t, err, "a full bucket lets a request larger than its burst through")
	release()

	_, err = acquireWithin(l, testKey, 1, 50*time.Millisecond)
	retryAfter := requireRateLimited(t, err)

	elapsed := time.Since(start)
	assert.GreaterOrEqual(t, retryAfter, 400*time.Millisecond-elapsed-time.Millisecond, "4 images leave the bucket 400 ms in debt")
	assert.LessOrEqual(t, retryAfter, 401*time.Millisecond)
}

func TestTwoLimitersNeverExceedSharedRate(t *testing.T) {
	client := newTestClient(t)
	// One request every 25 ms, shared by two limiters with two callers each.
	const interval = 25 * time.Millisecond
	lim := imagegen.Limits{RequestsPerMinute: float64(time.Minute / interval)}
	limiters := []*redislimit.Limiter{
		newTestLimiter(t, client, redislimit.Options{}, lim, testKey),
		newTestLimiter(t, client, redislimit.Options{}, lim, testKey),
	}

	const perCaller = 8
	var grants [2]atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range 4 {
		wg.Go(func() {
			l := limiters[i%2]
			for range perCaller {
				release, err := acquireWithin(l, testKey, 1, 10*time.Second)
				if !assert.NoError(t, err) {
					return
				}
				grants[i%2].Add(1)
				release()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	total := grants[0].Load() + grants[1].Load()
	require.EqualValues(t, 4*perCaller, total)
	assert.Positive(t, grants[0].Load())
	assert.Positive(t, grants[1].Load())
	// Within [start, start+elapsed] the bucket allows its burst of one plus
	// one request per interval. The millisecond absorbs the rounding of
	// Redis's float arithmetic.
	allowed := 1 + int64((elapsed+time.Millisecond)/interval)
	assert.LessOrEqual(t, total, allowed, "%d grants in %v", total, elapsed)
}

func TestPauseHoldsBackOtherLimiter(t *testing.T) {
	exhausted := provider.Quota{Known: true, Limit: 5, Remaining: 0, Reset: 2 * time.Second}
	tests := []struct {
		name string
		fb   imagegen.LimitFeedback
		want time.Duration // the pause
	}{
		{"429 with retry-after", imagegen.LimitFeedback{Class: imagegen.ClassRateLimited, RetryAfter: 2 * time.Second}, 2 * time.Second},
		{"429 without a hint", imagegen.LimitFeedback{Class: imagegen.ClassRateLimited}, time.Second},
		{"server error with retry-after", imagegen.LimitFeedback{Class: imagegen.ClassServer, RetryAfter: 2 * time.Second}, 2 * time.Second},
		{"success with exhausted requests", imagegen.LimitFeedback{Success: true, RateLimit: provider.RateLimit{Requests: exhausted}}, 2 * time.Second},
		{"success with exhausted tokens", imagegen.LimitFeedback{Success: true, RateLimit: provider.RateLimit{Tokens: exhausted}}, 2 * time.Second},
		{"longest wait wins", imagegen.LimitFeedback{Class: imagegen.ClassRateLimited, RetryAfter: time.Second, RateLimit: provider.RateLimit{Tokens: exhausted}}, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newTestClient(t)
			a := newTestLimiter(t, client, redislimit.Options{}, imagegen.Limits{})
			b := newTestLimiter(t, client, redislimit.Options{}, imagegen.Limits{})

			start := time.Now()
			a.Observe(testKey, tt.fb)
			_, err := acquireWithin(b, testKey, 1, 300*time.Millisecond)

			retryAfter := requireRateLimited(t, err)
			elapsed := time.Since(start)
			assert.GreaterOrEqual(t, retryAfter, tt.want-elapsed-time.Millisecond)
			assert.LessOrEqual(t, retryAfter, tt.want+tt.want/4, "the pause plus at most a quarter of jitter")
		})
	}
}

func TestPauseDelaysAcquire(t *testing.T) {
	client := newTestClient(t)
	a := newTestLimiter(t, client, redislimit.Options{}, imagegen.Limits{})
	b := newTestLimiter(t, client, redislimit.Options{}, imagegen.Limits{})

	start := time.Now()
	a.Observe(testKey, imagegen.LimitFeedback{Class: imagegen.ClassRateLimited, RetryAfter: 300 * time.Millisecond})
	release, err := acquireWithin(b, testKey, 1, 5*time.Second)

	require.NoError(t, err)
	release()
	assert.GreaterOrEqual(t, time.Since(start), 299*time.Millisecond)
}

func TestFeedbackThatDoesNotPause(t *testing.T) {
	tests := []struct {
		name string
		fb   imagegen.LimitFeedback
	}{
		{"quota exceeded", imagegen.LimitFeedback{Class: imagegen.ClassQuotaExceeded, RetryAfter: time.Minute}},
		{"not entitled", imagegen.LimitFeedback{Class: imagegen.ClassNotEntitled, RetryAfter: time.Minute,
			RateLimit: provider.RateLimit{Requests: provider.Quota{Known: true, Remaining: 0, Reset: time.Minute}}}},
		{"server error without retry-after", imagegen.LimitFeedback{Class: imagegen.ClassServer}},
		{"invalid request with retry-after", imagegen.LimitFeedback{Class: imagegen.ClassInvalidRequest, RetryAfter: time.Minute}},
		{"success with quota left", imagegen.LimitFeedback{Success: true,
			RateLimit: provider.RateLimit{Requests: provider.Quota{Known: true, Limit: 5, Remaining: 3, Reset: time.Minute}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newTestClient(t)
			a := newTestLimiter(t, client, redislimit.Options{}, imagegen.Limits{})
			b := newTestLimiter(t, client, redislimit.Options{}, imagegen.Limits{})

			a.Observe(testKey, tt.fb)
			release, err := acquireWithin(b, testKey, 1, time.Second)

			require.NoError(t, err)
			release()
			n, err := client.Exists(t.Context(), "imagegen:limit:{openai}:pause").Result()
			require.NoError(t, err)
			assert.Zero(t, n, "no pause stored")
		})
	}
}

func TestPauseOnlyExtends(t *testing.T) {
	client := newTestClient(t)
	l := newTestLimiter(t, client, redislimit.Options{Prefix: "app:"}, imagegen.Limits{})
	ctx := t.Context()
	const pauseKey = "app:{openai}:pause"

	l.Observe(testKey, imagegen.LimitFeedback{Class: imagegen.ClassRateLimited, RetryAfter: time.Hour})
	ttl, err := client.PTTL(ctx, pauseKey).Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, 9*time.Minute, "a pause is capped at 10 minutes")
	assert.LessOrEqual(t, ttl, 10*time.Minute)

	l.Observe(testKey, imagegen.LimitFeedback{Class: imagegen.ClassRateLimited, RetryAfter: time.Second})
	ttl, err = client.PTTL(ctx, pauseKey).Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, 9*time.Minute, "a shorter pause leaves the longer one")

	require.NoError(t, client.Del(ctx, pauseKey).Err())
	l.Observe(testKey, imagegen.LimitFeedback{Class: imagegen.ClassRateLimited, RetryAfter: time.Second})
	l.Observe(testKey, imagegen.LimitFeedback{Class: imagegen.ClassRateLimited, RetryAfter: 30 * time.Second})
	ttl, err = client.PTTL(ctx, pauseKey).Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, 29*time.Second, "a longer pause extends a shorter one")
}

func TestPauseTargetsModelOrProvider(t *testing.T) {
	client := newTestClient(t)
	m1 := imagegen.LimitKey{Provider: "openai", Model: "gpt-image-1"}
	m2 := imagegen.LimitKey{Provider: "openai", Model: "gpt-image-1-mini"}
	// Both limiters give gpt-image-1 its own entry, with no limits.
	a := newTestLimiter(t, client, redislimit.Options{}, imagegen.Limits{}, m1)
	b := newTestLimiter(t, client, redislimit.Options{}, imagegen.Limits{}, m1)
	rateLimited := imagegen.LimitFeedback{Class: imagegen.ClassRateLimited, RetryAfter: time.Minute}

	a.Observe(m1, rateLimited)

	_, err := acquireWithin(b, m1, 1, 300*time.Millisecond)
	requireRateLimited(t, err)
	release, err := acquireWithin(b, m2, 1, time.Second)
	require.NoError(t, err, "a model's pause holds back only that model")
	release()

	// gpt-image-1-mini has no entry of its own: its feedback pauses the
	// provider, and with it every model.
	a.Observe(m2, rateLimited)

	_, err = acquireWithin(b, m2, 1, 300*time.Millisecond)
	requireRateLimited(t, err)
	_, err = acquireWithin(b, testKey, 1, 300*time.Millisecond)
	requireRateLimited(t, err)
}

func TestModelLimitsApplyWithProviderLimits(t *testing.T) {
	client := newTestClient(t)
	m1 := imagegen.LimitKey{Provider: "openai", Model: "gpt-image-1"}
	m2 := imagegen.LimitKey{Provider: "openai", Model: "gpt-image-1-mini"}
	l := newTestLimiter(t, client, redislimit.Options{}, imagegen.Limits{RequestsPerMinute: 1, RequestBurst: 3}, testKey)
	require.NoError(t, l.SetLimits(m1, imagegen.Limits{RequestsPerMinute: 1}))

	got := countGrants(t, []*redislimit.Limiter{l}, m1, 1, 10)
	assert.Equal(t, 1, got, "the model's burst of one binds first")

	got = countGrants(t, []*redislimit.Limiter{l}, m2, 1, 10)
	assert.Equal(t, 2, got, "the provider's burst of three has two requests left; the refused one took none")
}

// flightCount returns the number of leases in key's in-flight set, expired
// ones included.
func flightCount(t *testing.T, client *redis.Client, key string) int64 {
	t.Helper()
	n, err := client.ZCard(t.Context(), key).Result()
	require.NoError(t, err)
	return n
}

func TestInFlightCapAcrossLimiters(t *testing.T) {
	client := newTestClient(t)
	const flightKey = "imagegen:limit:{openai}:flight"
	lim := imagegen.Limits{MaxInFlight: 2}
	a := newTestLimiter(t, client, redislimit.Options{}, lim, testKey)
	b := newTestLimiter(t, client, redislimit.Options{}, lim, testKey)

	releaseA, err := acquireWithin(a, testKey, 1, time.Second)
	require.NoError(t, err)
	releaseB, err := acquireWithin(b, testKey, 1, time.Second)
	require.NoError(t, err)
	assert.EqualValues(t, 2, flightCount(t, client, flightKey))

	_, err = acquireWithin(a, testKey, 1, 200*time.Millisecond)
	require.ErrorIs(t, err, context.DeadlineExceeded, "a third request waits for a slot until its context ends")
	assert.NotErrorIs(t, err, imagegen.ErrRateLimited)
	assert.EqualValues(t, 2, flightCount(t, client, flightKey), "the failed wait leaves no lease")

	acquired := make(chan error, 1)
	var releaseC func()
	go func() {
		var err error
		releaseC, err = acquireWithin(b, testKey, 1, 10*time.Second)
		acquired <- err
	}()
	releaseA()
	releaseA() // extra calls do nothing
	require.NoError(t, <-acquired, "a slot released by one limiter serves the other")

	releaseB()
	releaseC()
	assert.Zero(t, flightCount(t, client, flightKey))
}

func TestLeaseExpiresAfterCrash(t *testing.T) {
	client := newTestClient(t)
	lim := imagegen.Limits{MaxInFlight: 1}
	const leaseTTL = 300 * time.Millisecond
	crashed := newTestLimiter(t, client, redislimit.Options{LeaseTTL: leaseTTL}, lim, testKey)
	survivor := newTestLimiter(t, client, redislimit.Options{}, lim, testKey)

	start := time.Now()
	_, err := acquireWithin(crashed, testKey, 1, time.Second)
	require.NoError(t, err)
	// The crashed process never calls release.

	release, err := acquireWithin(survivor, testKey, 1, 10*time.Second)
	require.NoError(t, err, "the slot returns when the lease expires")
	release()
	assert.GreaterOrEqual(t, time.Since(start), leaseTTL-time.Millisecond)
}

func TestAcquireDeadlineFailsAtOnce(t *testing.T) {
	client := newTestClient(t)
	l := newTestLimiter(t, client, redislimit.Options{}, imagegen.Limits{RequestsPerMinute: 60}, imagegen.LimitKey{Provider: "openai", Model: "gpt-image-1"})
	key := imagegen.LimitKey{Provider: "openai", Model: "gpt-image-1"}
	release, err := acquireWithin(l, key, 1, time.Second)
	require.NoError(t, err)
	release()

	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	_, err = l.Acquire(ctx, key, 1)

	assert.NoError(t, ctx.Err(), "Acquire returns before the deadline")
	retryAfter := requireRateLimited(t, err)
	assert.Greater(t, retryAfter, 500*time.Millisecond)
	var e *imagegen.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "openai", e.Provider)
	assert.Equal(t, "gpt-image-1", e.Model)
}

func TestAcquireCanceled(t *testing.T) {
	tests := []struct {
		name string
		lim  imagegen.Limits
	}{
		{"waiting for tokens", imagegen.Limits{RequestsPerMinute: 60, MaxInFlight: 5}},
		{"waiting for a slot", imagegen.Limits{MaxInFlight: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newTestClient(t)
			l := newTestLimiter(t, client, redislimit.Options{}, tt.lim, testKey)
			release, err := acquireWithin(l, testKey, 1, time.Second)
			require.NoError(t, err)

			ctx, cancel := context.WithCancel(t.Context())
			stop := time.AfterFunc(100*time.Millisecond, cancel)
			defer stop.Stop()
			_, err = l.Acquire(ctx, testKey, 1)

			require.ErrorIs(t, err, context.Canceled)
			assert.NotErrorIs(t, err, imagegen.ErrRateLimited)
			assert.EqualValues(t, 1, flightCount(t, client, "imagegen:limit:{openai}:flight"), "the canceled request leaves no lease")
			release()
		})
	}

	t.Run("canceled before the call", func(t *testing.T) {
		client := newTestClient(t)
		l := newTestLimiter(t, client, redislimit.Options{}, imagegen.Limits{})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()

		_, err := l.Acquire(ctx, testKey, 1)

		require.ErrorIs(t, err, context.Canceled)
	})
}

// syncBuffer is a bytes.Buffer safe for concurrent writes, for log output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRedisDown(t *testing.T) {
	// A port that was just free and is closed again refuses connections.
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := listener.Addr().String()
	require.NoError(t, listener.Close())
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = client.Close() })

	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l := newTestLimiter(t, client, redislimit.Options{Logger: logger}, imagegen.Limits{RequestsPerMinute: 60, MaxInFlight: 2}, testKey)

	for _, key := range []imagegen.LimitKey{testKey, {Provider: "unconfigured"}} {
		t.Run(key.Provider, func(t *testing.T) {
			release, err := acquireWithin(l, key, 1, 5*time.Second)

			require.Error(t, err)
			assert.Nil(t, release)
			var e *imagegen.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, imagegen.ClassNetwork, e.Class)
			assert.ErrorContains(t, err, "rate limiter's Redis is unreachable")
			assert.ErrorIs(t, err, syscall.ECONNREFUSED, "the go-redis error is wrapped")
		})
	}

	t.Run("observe logs and drops", func(t *testing.T) {
		l.Observe(testKey, imagegen.LimitFeedback{Class: imagegen.ClassRateLimited})

		assert.Contains(t, logs.String(), "level=WARN")
		assert.Contains(t, logs.String(), "could not store a pause")
	})
}

func TestReleaseFailureIsLogged(t *testing.T) {
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr})
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	l := newTestLimiter(t, client, redislimit.Options{Logger: logger}, imagegen.Limits{MaxInFlight: 1}, testKey)

	release, err := acquireWithin(l, testKey, 1, time.Second)
	require.NoError(t, err)
	require.NoError(t, client.Close())
	release()

	assert.Contains(t, logs.String(), "level=WARN")
	assert.Contains(t, logs.String(), "could not release an in-flight lease")
}

func TestObserveLogsPauseAtDebug(t *testing.T) {
	client := newTestClient(t)
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l := newTestLimiter(t, client, redislimit.Options{Logger: logger}, imagegen.Limits{})

	l.Observe(testKey, imagegen.LimitFeedback{Class: imagegen.ClassRateLimited, RetryAfter: time.Second})

	out := logs.String()
	assert.Contains(t, out, "level=DEBUG")
	assert.Contains(t, out, "rate limiter paused")
	assert.Contains(t, out, "provider=openai")
	assert.NotContains(t, out, "WARN")
}

func TestErrorsOfDifferentKinds(t *testing.T) {
	// A Redis error that is not a connection failure still stops Acquire:
	// here the pause key holds a value of the wrong type.
	client := newTestClient(t)
	l := newTestLimiter(t, client, redislimit.Options{}, imagegen.Limits{})
	require.NoError(t, client.LPush(t.Context(), "imagegen:limit:{openai}:pause", "x").Err())

	_, err := acquireWithin(l, testKey, 1, time.Second)

	var e *imagegen.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, imagegen.ClassNetwork, e.Class)
	var redisErr redis.Error
	assert.True(t, errors.As(err, &redisErr), "the go-redis error is wrapped: %v", err)
}

func TestLeaseOutlivesTheWait(t *testing.T) {
	client := newTestClient(t)
	modelKey := imagegen.LimitKey{Provider: "openai", Model: "m"}
	l := newTestLimiter(t, client, redislimit.Options{LeaseTTL: 300 * time.Millisecond}, imagegen.Limits{MaxInFlight: 1}, testKey)
	require.NoError(t, l.SetLimits(modelKey, imagegen.Limits{RequestsPerMinute: 60}))

	// The first request takes the model's only token, the second holds the
	// provider's only slot while it waits about a second for the next token,
	// longer than LeaseTTL.
	release, err := acquireWithin(l, modelKey, 1, 5*time.Second)
	require.NoError(t, err)
	release()
	waited := make(chan error, 1)
	go func() {
		release, err := acquireWithin(l, modelKey, 1, 5*time.Second)
		if err == nil {
			defer release()
		}
		waited <- err
	}()
	time.Sleep(600 * time.Millisecond)

	_, err = acquireWithin(l, testKey, 1, 100*time.Millisecond)

	assert.Error(t, err, "the waiting request's lease still holds the only slot")
	require.NoError(t, <-waited)
}
