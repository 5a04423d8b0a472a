package imagegen_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/provider"
)

// scriptProvider serves each call with the next scripted step and records
// when each call arrived. After the script it succeeds.
type scriptProvider struct {
	name string

	mu    sync.Mutex
	steps []func(ctx context.Context) error
	calls []time.Time
}

func newScript(name string, steps ...func(ctx context.Context) error) *scriptProvider {
	return &scriptProvider{name: name, steps: steps}
}

func (p *scriptProvider) Name() string { return p.name }

func (p *scriptProvider) Generate(ctx context.Context, req *provider.Request) (*provider.Response, error) {
	p.mu.Lock()
	p.calls = append(p.calls, time.Now())
	var step func(context.Context) error
	if len(p.steps) > 0 {
		step, p.steps = p.steps[0], p.steps[1:]
	}
	p.mu.Unlock()

	if step != nil {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	return &provider.Response{
		Images: []provider.Image{{Data: []byte("\x89PNG fake"), MediaType: "image/png"}},
		Model:  req.Model,
	}, nil
}

func (p *scriptProvider) callTimes() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.calls...)
}

// apiErr returns a step that fails like an HTTP error response.
func apiErr(status int, typ, code string, header ...string) func(context.Context) error {
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return func(context.Context) error {
		return imagegen.NewAPIError(imagegen.APIErrorInfo{Provider: "script", StatusCode: status, Type: typ, Code: code, Header: h})
	}
}

// hang returns a step that blocks until the attempt's context ends.
func hang(ctx context.Context) error {
	<-ctx.Done()
	return imagegen.NewTransportError("script", "", ctx.Err(), true)
}

func newTestClient(t *testing.T, policy imagegen.RetryPolicy, providers ...provider.Provider) *imagegen.Client {
	t.Helper()
	opts := []imagegen.Option{imagegen.WithRetry(policy)}
	for _, p := range providers {
		opts = append(opts, imagegen.WithProvider(p))
	}
	c, err := imagegen.New(opts...)
	require.NoError(t, err)
	return c
}

func gaps(times []time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(times); i++ {
		out = append(out, times[i].Sub(times[i-1]))
	}
	return out
}

func TestRetryRateLimitThenSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newScript("p", apiErr(429, "requests", "rate_limit_exceeded", "Retry-After", "3"))
		c := newTestClient(t, imagegen.RetryPolicy{}, p)

		res, err := c.Generate(t.Context(), "a lighthouse", imagegen.GenerateOptions{})

		require.NoError(t, err)
		assert.Equal(t, 2, res.Attempts)
		assert.Equal(t, []time.Duration{3 * time.Second}, gaps(p.callTimes()), "waits exactly what the server asked")
	})
}

func TestRetryStopsOnClass(t *testing.T) {
	tests := []struct {
		name      string
		step      func(context.Context) error
		wantFirst int // calls to the first provider
		wantNext  int // calls to the second provider
		sentinel  error
	}{
		{"insufficient quota moves on", apiErr(429, "insufficient_quota", "insufficient_quota"), 1, 1, nil},
		{"moderation stops", apiErr(400, "image_generation_user_error", "moderation_blocked"), 1, 0, imagegen.ErrContentRejected},
		{"invalid request stops", apiErr(400, "invalid_request_error", "invalid_value"), 1, 0, imagegen.ErrInvalidRequest},
		{"authentication moves on", apiErr(401, "invalid_request_error", "invalid_api_key"), 1, 1, nil},
		{"not entitled moves on", apiErr(403, "", ""), 1, 1, nil},
		{"should-retry false moves on", apiErr(500, "server_error", "", "X-Should-Retry", "false"), 1, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				first := newScript("first", tt.step, tt.step, tt.step)
				second := newScript("second")
				c := newTestClient(t, imagegen.RetryPolicy{}, first, second)

				_, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

				assert.Len(t, first.callTimes(), tt.wantFirst)
				assert.Len(t, second.callTimes(), tt.wantNext)
				if tt.sentinel != nil {
					assert.ErrorIs(t, err, tt.sentinel)
				} else {
					assert.NoError(t, err)
				}
			})
		})
	}
}

func TestRetryInsufficientQuotaAttemptedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		step := apiErr(429, "insufficient_quota", "insufficient_quota")
		p := newScript("p", step, step, step)
		c := newTestClient(t, imagegen.RetryPolicy{}, p)

		_, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

		assert.ErrorIs(t, err, imagegen.ErrQuotaExceeded)
		assert.Len(t, p.callTimes(), 1)
	})
}

func TestRetryServerStormStopsAtMaxAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		step := apiErr(503, "server_error", "")
		p := newScript("p", step, step, step, step, step)
		c := newTestClient(t, imagegen.RetryPolicy{MaxAttempts: 4}, p)

		_, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

		var ae *imagegen.AttemptsError
		require.ErrorAs(t, err, &ae)
		assert.Len(t, ae.Errors, 4)
		assert.ErrorIs(t, err, imagegen.ErrServer)

		// Default backoff: 1 s, 2 s, 4 s, each randomized by ±50 %.
		waits := gaps(p.callTimes())
		require.Len(t, waits, 3)
		for i, base := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
			assert.GreaterOrEqual(t, waits[i], base/2, "wait %d", i)
			assert.LessOrEqual(t, waits[i], base*3/2, "wait %d", i)
		}
	})
}

func TestRetryExactWaitsWithoutJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		step := apiErr(500, "server_error", "")
		p := newScript("p", step, step, step, step, step)
		policy := imagegen.RetryPolicy{MaxAttempts: 5, NoJitter: true, InitialDelay: 100 * time.Millisecond, Multiplier: 3, MaxDelay: time.Second}
		c := newTestClient(t, policy, p)

		_, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

		require.Error(t, err)
		assert.Equal(t, []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, 900 * time.Millisecond, time.Second}, gaps(p.callTimes()))
	})
}

func TestRetryCancelDuringBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		step := apiErr(503, "server_error", "", "Retry-After", "30")
		p := newScript("p", step, step)
		c := newTestClient(t, imagegen.RetryPolicy{}, p)
		ctx, cancel := context.WithCancel(t.Context())

		var err error
		var returned time.Time
		done := make(chan struct{})
		go func() {
			_, err = c.Generate(ctx, "x", imagegen.GenerateOptions{})
			returned = time.Now()
			close(done)
		}()
		synctest.Wait() // The call is now sleeping in its backoff.
		canceled := time.Now()
		cancel()
		<-done

		assert.Less(t, returned.Sub(canceled), 10*time.Millisecond)
		assert.ErrorIs(t, err, context.Canceled)
		var last *imagegen.Error
		require.ErrorAs(t, err, &last)
		assert.Equal(t, 503, last.StatusCode)
		assert.Len(t, p.callTimes(), 1)
	})
}

func TestRetryLongWaitMovesOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		first := newScript("first", apiErr(429, "requests", "rate_limit_exceeded", "Retry-After", "600"))
		second := newScript("second")
		c := newTestClient(t, imagegen.RetryPolicy{MaxWait: time.Minute}, first, second)
		start := time.Now()

		res, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

		require.NoError(t, err)
		assert.Equal(t, "second", res.Provider)
		assert.Zero(t, time.Since(start), "a wait over MaxWait is not slept")
		assert.Len(t, first.callTimes(), 1)
	})
}

func TestRetryAttemptTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newScript("p", hang)
		c := newTestClient(t, imagegen.RetryPolicy{AttemptTimeout: 2 * time.Minute, NoJitter: true}, p)
		start := time.Now()

		res, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

		require.NoError(t, err)
		assert.Equal(t, 2, res.Attempts)
		assert.Equal(t, 2*time.Minute+time.Second, time.Since(start), "timeout, then the first backoff delay")
	})
}

func TestRetryUnknownOutcomePolicy(t *testing.T) {
	dropped := func(context.Context) error {
		return imagegen.NewTransportError("p", "", errors.New("connection reset by peer"), true)
	}
	for _, tt := range []struct {
		policy    imagegen.OutcomePolicy
		wantCalls int
		wantErr   bool
	}{
		{imagegen.RetryUnknownOutcome, 2, false},
		{imagegen.StopOnUnknownOutcome, 1, true},
	} {
		synctest.Test(t, func(t *testing.T) {
			p := newScript("p", dropped)
			c := newTestClient(t, imagegen.RetryPolicy{OutcomeUnknown: tt.policy}, p)

			_, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

			assert.Equal(t, tt.wantErr, err != nil)
			assert.Len(t, p.callTimes(), tt.wantCalls)
			if tt.wantErr {
				assert.ErrorIs(t, err, imagegen.ErrOutcomeUnknown)
			}
		})
	}
}

func TestRetryBudgetLimitsStorm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		calls := 0
		down := &funcProvider{name: "down", fn: func(context.Context, *provider.Request) (*provider.Response, error) {
			mu.Lock()
			calls++
			mu.Unlock()
			return nil, imagegen.NewAPIError(imagegen.APIErrorInfo{StatusCode: 503})
		}}
		// The breaker would stop the storm on its own: keep it closed to
		// see the budget alone.
		c, err := imagegen.New(imagegen.WithProvider(down),
			imagegen.WithRetry(imagegen.RetryPolicy{MaxAttempts: 3, RetryBudget: 0.1}),
			imagegen.WithBreaker(imagegen.BreakerSettings{ConsecutiveFailures: 1000, FailureRate: 1, MinRequests: 1000}))
		require.NoError(t, err)

		const n = 100
		for range n {
			_, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})
			require.Error(t, err)
		}

		// Without a budget 100 calls would make 300 attempts. The budget
		// allows the reserve of 10 retries plus 0.1 per call.
		retries := calls - n
		assert.LessOrEqual(t, retries, 10+n/10+1)
		assert.GreaterOrEqual(t, retries, 10)
	})
}

func TestRetryCallerDeadlineWins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newScript("p", hang, hang, hang)
		c := newTestClient(t, imagegen.RetryPolicy{}, p)
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		start := time.Now()

		_, err := c.Generate(ctx, "x", imagegen.GenerateOptions{})

		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 5*time.Second, time.Since(start))
		assert.Len(t, p.callTimes(), 1)
	})
}

// funcProvider adapts a function to provider.Provider.
type funcProvider struct {
	name string
	fn   func(context.Context, *provider.Request) (*provider.Response, error)
}

func (p *funcProvider) Name() string { return p.name }

func (p *funcProvider) Generate(ctx context.Context, req *provider.Request) (*provider.Response, error) {
	return p.fn(ctx, req)
}
