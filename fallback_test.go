package imagegen_test

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/imagegentest"
	"github.com/imagegen-go/imagegen/provider/openai"
)

// servers starts n imagegentest servers and a Client with one OpenAI
// provider on each, named "p0", "p1", ... and tried in that order.
func servers(t *testing.T, n int, opts ...imagegen.Option) (*imagegen.Client, []*imagegentest.Server) {
	t.Helper()
	var srvs []*imagegentest.Server
	for i := range n {
		srv := imagegentest.NewServer()
		t.Cleanup(srv.Close)
		srvs = append(srvs, srv)
		p, err := openai.New(openai.Options{Name: "p" + string(rune('0'+i)), APIKey: "sk-test", BaseURL: srv.URL})
		require.NoError(t, err)
		opts = append(opts, imagegen.WithProvider(p))
	}
	c, err := imagegen.New(opts...)
	require.NoError(t, err)
	return c, srvs
}

func counts(srvs []*imagegentest.Server) []int {
	out := make([]int, len(srvs))
	for i, s := range srvs {
		out[i] = s.RequestCount()
	}
	return out
}

func TestFallbackScenarios(t *testing.T) {
	fastRetry := imagegen.WithRetry(imagegen.RetryPolicy{
		MaxAttempts: 3, InitialDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond,
		MaxWait: time.Second, AttemptTimeout: 200 * time.Millisecond,
	})
	tests := []struct {
		name       string
		primary    []imagegentest.Response
		wantCalls  []int
		wantErr    error
		wantServed string
	}{
		{"rate limit with long wait", []imagegentest.Response{imagegentest.RateLimited(10 * time.Minute)}, []int{1, 1}, nil, "p1"},
		{"insufficient quota", []imagegentest.Response{imagegentest.InsufficientQuota()}, []int{1, 1}, nil, "p1"},
		{"503 storm", []imagegentest.Response{imagegentest.Overloaded(), imagegentest.Overloaded(), imagegentest.Overloaded()}, []int{3, 1}, nil, "p1"},
		{"slow past the attempt timeout", []imagegentest.Response{imagegentest.Timeout(time.Minute), imagegentest.Timeout(time.Minute), imagegentest.Timeout(time.Minute)}, []int{3, 1}, nil, "p1"},
		{"not entitled", []imagegentest.Response{imagegentest.OrganizationNotVerified("gpt-image-2")}, []int{1, 1}, nil, "p1"},
		{"model not found", []imagegentest.Response{imagegentest.ModelNotFound("gpt-image-2")}, []int{1, 1}, nil, "p1"},
		{"moderation stops", []imagegentest.Response{imagegentest.ModerationBlocked()}, []int{1, 0}, imagegen.ErrContentRejected, ""},
		{"invalid request stops", []imagegentest.Response{imagegentest.InvalidParameter("size", "invalid_value")}, []int{1, 0}, imagegen.ErrInvalidRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srvs := servers(t, 2, fastRetry)
			srvs[0].Enqueue(tt.primary...)

			res, err := c.Generate(t.Context(), "a lighthouse", imagegen.GenerateOptions{})

			assert.Equal(t, tt.wantCalls, counts(srvs), "upstream calls per server")
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantServed, res.Provider)
			assert.Contains(t, res.Warnings[len(res.Warnings)-1], "fell back to p1")
		})
	}
}

func TestFallbackContentRejectedConfigurable(t *testing.T) {
	c, srvs := servers(t, 2, imagegen.WithFallback(imagegen.FallbackPolicy{OnContentRejected: true}))
	srvs[0].Enqueue(imagegentest.ModerationBlocked())

	res, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

	require.NoError(t, err)
	assert.Equal(t, "p1", res.Provider)
	assert.Equal(t, []int{1, 1}, counts(srvs))
}

func TestFallbackAllFail(t *testing.T) {
	c, srvs := servers(t, 3, imagegen.WithRetry(imagegen.RetryPolicy{MaxAttempts: 1}))
	srvs[0].Enqueue(imagegentest.InsufficientQuota())
	srvs[1].Enqueue(imagegentest.InvalidAPIKey())
	srvs[2].Enqueue(imagegentest.Overloaded())

	_, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

	var ae *imagegen.AttemptsError
	require.ErrorAs(t, err, &ae)
	require.Len(t, ae.Errors, 3)
	assert.Equal(t, "p0", ae.Errors[0].Provider)
	assert.Equal(t, imagegen.ClassQuotaExceeded, ae.Errors[0].Class)
	assert.Equal(t, "p1", ae.Errors[1].Provider)
	assert.Equal(t, imagegen.ClassAuthentication, ae.Errors[1].Class)
	assert.Equal(t, "p2", ae.Errors[2].Provider)
	assert.Equal(t, imagegen.ClassServer, ae.Errors[2].Class)
	assert.Contains(t, err.Error(), "p0: 1, p1: 1, p2: 1")
	assert.Contains(t, err.Error(), "last: p2: server error (503")
	assert.ErrorIs(t, err, imagegen.ErrQuotaExceeded)
	assert.ErrorIs(t, err, imagegen.ErrAuthentication)
	assert.NotContains(t, err.Error(), "sk-")
	assert.Equal(t, []int{1, 1, 1}, counts(srvs))
}

func TestFallbackModelChain(t *testing.T) {
	primary := imagegentest.NewFakeProvider("primary")
	primary.Enqueue(imagegentest.FakeResult{Err: imagegentest.FakeError(http.StatusNotFound, "invalid_request_error", "model_not_found", "no such model", nil)})
	c, err := imagegen.New(imagegen.WithProvider(primary, imagegen.WithModels("gpt-image-2.6-sunburst", "gpt-image-2")))
	require.NoError(t, err)

	res, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

	require.NoError(t, err)
	assert.Equal(t, "gpt-image-2", res.Model)
	reqs := primary.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "gpt-image-2.6-sunburst", reqs[0].Model)
	assert.Equal(t, "gpt-image-2", reqs[1].Model)
}

func TestFallbackFailedProviderNotRetried(t *testing.T) {
	primary := imagegentest.NewFakeProvider("primary")
	primary.Enqueue(imagegentest.FakeResult{Err: imagegentest.FakeError(http.StatusTooManyRequests, "insufficient_quota", "insufficient_quota", "quota", nil)})
	backup := imagegentest.NewFakeProvider("backup")
	c, err := imagegen.New(
		imagegen.WithProvider(primary, imagegen.WithModels("gpt-image-2.6-sunburst", "gpt-image-2")),
		imagegen.WithProvider(backup))
	require.NoError(t, err)

	res, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

	require.NoError(t, err)
	assert.Equal(t, "backup", res.Provider)
	assert.Equal(t, 1, primary.Calls(), "an account-level failure skips the provider's other models")
}

func TestBreakerOpensThenProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		primary := imagegentest.NewFakeProvider("primary")
		backup := imagegentest.NewFakeProvider("backup")
		down := true
		primary.SetFunc(func(context.Context, imagegentest.FakeCall) *imagegentest.FakeResult {
			if down {
				return &imagegentest.FakeResult{Err: imagegentest.FakeError(http.StatusServiceUnavailable, "server_error", "", "overloaded", nil)}
			}
			return nil
		})
		var changes []string
		c, err := imagegen.New(
			imagegen.WithProvider(primary), imagegen.WithProvider(backup),
			imagegen.WithRetry(imagegen.RetryPolicy{MaxAttempts: 1}),
			imagegen.WithBreaker(imagegen.BreakerSettings{ConsecutiveFailures: 3, Cooldown: 30 * time.Second}),
			imagegen.WithHooks(imagegen.Hooks{BreakerChange: func(_ context.Context, e imagegen.BreakerEvent) {
				changes = append(changes, e.Provider+":"+e.From.String()+"->"+e.To.String())
			}}))
		require.NoError(t, err)
		generate := func() string {
			res, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})
			require.NoError(t, err)
			return res.Provider
		}

		for range 3 {
			assert.Equal(t, "backup", generate())
		}
		assert.Equal(t, 3, primary.Calls())
		assert.Equal(t, []string{"primary:closed->open"}, changes)

		for range 10 {
			assert.Equal(t, "backup", generate())
		}
		assert.Equal(t, 3, primary.Calls(), "no request reaches an open breaker")

		time.Sleep(30 * time.Second)
		down = false
		assert.Equal(t, "primary", generate(), "the half-open probe succeeds")
		assert.Equal(t, []string{"primary:closed->open", "primary:open->half_open", "primary:half_open->closed"}, changes)
		assert.Equal(t, "primary", generate())
		assert.Equal(t, 5, primary.Calls())
	})
}

func TestOrderStrategies(t *testing.T) {
	a := imagegentest.NewFakeProvider("a")
	b := imagegentest.NewFakeProvider("b")
	c, err := imagegen.New(
		imagegen.WithProvider(a, imagegen.WithModels("gpt-image-1-mini")),
		imagegen.WithProvider(b, imagegen.WithModels("gpt-image-1")),
		imagegen.WithStrategy(imagegen.OrderCost), imagegen.WithRetiredModels())
	require.NoError(t, err)

	res, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{Quality: "low", Size: "1024x1024"})

	require.NoError(t, err)
	assert.Equal(t, "b", res.Provider, "gpt-image-1 has an estimate; gpt-image-1-mini has none and sorts last")
	assert.Zero(t, a.Calls())

	_, err = imagegen.New(imagegen.WithProvider(a), imagegen.WithStrategy(imagegen.Strategy(42)))
	assert.ErrorContains(t, err, "unknown strategy")
}

func TestFallbackTranslatesRequestForOlderModel(t *testing.T) {
	primary := imagegentest.NewFakeProvider("primary")
	primary.Enqueue(imagegentest.FakeResult{Err: imagegentest.FakeError(http.StatusServiceUnavailable, "server_error", "", "overloaded", nil)})
	c, err := imagegen.New(
		imagegen.WithProvider(primary, imagegen.WithModels("gpt-image-2", "gpt-image-1")),
		imagegen.WithFallback(imagegen.FallbackPolicy{}),
		imagegen.WithRetry(imagegen.RetryPolicy{MaxAttempts: 1}),
		imagegen.WithRetiredModels())
	require.NoError(t, err)

	// A wide free-form size and the xhigh quality exist on gpt-image-2 only.
	res, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{Size: "2048x1152", Quality: "xhigh"})

	require.NoError(t, err)
	assert.Equal(t, "gpt-image-1", res.Model)
	reqs := primary.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "2048x1152", reqs[0].Size)
	assert.Equal(t, "1536x1024", reqs[1].Size, "nearest listed size by aspect ratio")
	assert.Equal(t, "high", reqs[1].Quality)
	assert.Contains(t, res.Warnings, `size "2048x1152" changed to "1536x1024" for gpt-image-1`)
	assert.Contains(t, res.Warnings, `quality "xhigh" changed to "high" for gpt-image-1`)
}

func TestFallbackSkipsModelThatCannotServe(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake")
	c, err := imagegen.New(imagegen.WithProvider(fake, imagegen.WithModels("dall-e-3")), imagegen.WithRetiredModels())
	require.NoError(t, err)

	_, err = c.Generate(t.Context(), "x", imagegen.GenerateOptions{Model: "gpt-image-2", Background: "transparent"})
	assert.ErrorContains(t, err, "no configured provider serves this model")

	c, err = imagegen.New(imagegen.WithProvider(fake, imagegen.WithModels("gpt-image-2", "dall-e-3")), imagegen.WithRetiredModels())
	require.NoError(t, err)
	fake.Enqueue(imagegentest.FakeResult{Err: imagegentest.FakeError(http.StatusServiceUnavailable, "server_error", "", "down", nil)},
		imagegentest.FakeResult{Err: imagegentest.FakeError(http.StatusServiceUnavailable, "server_error", "", "down", nil)},
		imagegentest.FakeResult{Err: imagegentest.FakeError(http.StatusServiceUnavailable, "server_error", "", "down", nil)})

	_, err = c.Generate(t.Context(), "x", imagegen.GenerateOptions{Background: "transparent", OutputFormat: "png"})

	require.Error(t, err)
	for _, r := range fake.Requests() {
		assert.Equal(t, "gpt-image-2", r.Model, "dall-e-3 cannot make a transparent background and is never called")
	}
}

func TestOrderWeightedRandomShares(t *testing.T) {
	heavy := imagegentest.NewFakeProvider("heavy", imagegentest.WithTinyImages(), imagegentest.WithoutRecording())
	light := imagegentest.NewFakeProvider("light", imagegentest.WithTinyImages(), imagegentest.WithoutRecording())
	c, err := imagegen.New(
		imagegen.WithProvider(heavy, imagegen.WithWeight(3)),
		imagegen.WithProvider(light, imagegen.WithWeight(1)),
		imagegen.WithStrategy(imagegen.OrderWeightedRandom))
	require.NoError(t, err)

	const calls = 1000
	for range calls {
		_, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})
		require.NoError(t, err)
	}

	// Expected share 0.75; the standard deviation over 1000 calls is 0.014.
	assert.InDelta(t, 0.75, float64(heavy.Calls())/calls, 0.05)
	assert.Equal(t, calls, heavy.Calls()+light.Calls())
}

func TestOrderLatencyPrefersFaster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := imagegentest.NewFakeProvider("slow", imagegentest.WithFakeDelay(20*time.Second))
		fast := imagegentest.NewFakeProvider("fast", imagegentest.WithFakeDelay(2*time.Second))
		c, err := imagegen.New(imagegen.WithProvider(slow), imagegen.WithProvider(fast),
			imagegen.WithStrategy(imagegen.OrderLatency))
		require.NoError(t, err)

		var last string
		for range 10 {
			res, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})
			require.NoError(t, err)
			last = res.Provider
		}

		assert.Equal(t, "fast", last, "once both are measured, the faster provider goes first")
		assert.Greater(t, fast.Calls(), slow.Calls())
	})
}
