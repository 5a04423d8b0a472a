package imagegen_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/imagegentest"
	"github.com/imagegen-go/imagegen/provider"
	"github.com/imagegen-go/imagegen/provider/openai"
)

// refusingTransport fails every request without touching the network, so a
// provider pointed at a real endpoint can be tested offline.
type refusingTransport struct {
	mu   sync.Mutex
	urls []string
}

func (t *refusingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.mu.Lock()
	t.urls = append(t.urls, r.URL.String())
	t.mu.Unlock()
	return nil, errors.New("refusingTransport: no network in tests")
}

func (t *refusingTransport) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.urls)
}

func officialProvider(t *testing.T) (*openai.Provider, *refusingTransport) {
	t.Helper()
	rt := &refusingTransport{}
	p, err := openai.New(openai.Options{APIKey: "sk-test", HTTPClient: &http.Client{Transport: rt}})
	require.NoError(t, err)
	require.True(t, p.EnforcesRetirement())
	return p, rt
}

func TestRetiredModelGuard(t *testing.T) {
	p, rt := officialProvider(t)
	c, err := imagegen.New(imagegen.WithProvider(p))
	require.NoError(t, err)

	_, err = c.Generate(t.Context(), "x", imagegen.GenerateOptions{Model: "gpt-image-1"})

	assert.ErrorIs(t, err, imagegen.ErrModelRetired)
	var retired *imagegen.RetiredError
	require.ErrorAs(t, err, &retired)
	assert.Contains(t, err.Error(), "2026-10-23")
	assert.Contains(t, err.Error(), "gpt-image-2.5")
	assert.Contains(t, err.Error(), "WithRetiredModels")
	assert.Zero(t, rt.count(), "no request is sent")

	_, err = c.Generate(t.Context(), "x", imagegen.GenerateOptions{Model: "gpt-image-1-mini"})
	assert.ErrorContains(t, err, "2026-12-01")
	assert.ErrorContains(t, err, "gpt-image-2.6")
	assert.Zero(t, rt.count())
}

func TestRetiredModelOverride(t *testing.T) {
	p, rt := officialProvider(t)
	c, err := imagegen.New(imagegen.WithProvider(p), imagegen.WithRetiredModels(),
		imagegen.WithRetry(imagegen.RetryPolicy{MaxAttempts: 1}))
	require.NoError(t, err)

	_, err = c.Generate(t.Context(), "x", imagegen.GenerateOptions{Model: "gpt-image-1"})

	assert.NotErrorIs(t, err, imagegen.ErrModelRetired)
	assert.Equal(t, 1, rt.count(), "the override lets the request through")
}

func TestRetiredModelOnGateway(t *testing.T) {
	srv := imagegentest.NewServer()
	t.Cleanup(srv.Close)
	gateway, err := openai.New(openai.Options{Name: "gateway", APIKey: "k", BaseURL: srv.URL})
	require.NoError(t, err)
	require.False(t, gateway.EnforcesRetirement())
	official, rt := officialProvider(t)
	c, err := imagegen.New(imagegen.WithProvider(official), imagegen.WithProvider(gateway))
	require.NoError(t, err)

	res, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{Model: "gpt-image-1"})

	require.NoError(t, err)
	assert.Equal(t, "gateway", res.Provider, "the official endpoint is skipped, the gateway still serves the model")
	assert.Zero(t, rt.count())
	assert.Equal(t, "gpt-image-1", srv.Requests()[0].Body["model"])
}

func TestZeroClient(t *testing.T) {
	var nilClient *imagegen.Client
	_, err := nilClient.Generate(t.Context(), "x", imagegen.GenerateOptions{})
	assert.ErrorIs(t, err, imagegen.ErrNoClient)
	_, err = nilClient.Edit(t.Context(), "x", nil, imagegen.EditOptions{})
	assert.ErrorIs(t, err, imagegen.ErrNoClient)
	assert.Empty(t, nilClient.Stats().Providers)

	var zero imagegen.Client
	_, err = zero.Generate(t.Context(), "x", imagegen.GenerateOptions{})
	assert.ErrorIs(t, err, imagegen.ErrNoClient)
}

func TestNewRejectsBadOptions(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake")
	tests := []struct {
		name string
		opts []imagegen.Option
		want string
	}{
		{"no provider", nil, "no provider"},
		{"nil provider", []imagegen.Option{imagegen.WithProvider(nil)}, "nil provider"},
		{"empty name", []imagegen.Option{imagegen.WithProvider(imagegentest.NewFakeProvider(""))}, "empty Name"},
		{"duplicate name", []imagegen.Option{imagegen.WithProvider(fake), imagegen.WithProvider(fake)}, `duplicate provider name "fake"`},
		{"empty model chain", []imagegen.Option{imagegen.WithProvider(fake, imagegen.WithModels())}, "no model given"},
		{"negative attempts", []imagegen.Option{imagegen.WithProvider(fake), imagegen.WithRetry(imagegen.RetryPolicy{MaxAttempts: -1})}, "MaxAttempts -1"},
		{"jitter too large", []imagegen.Option{imagegen.WithProvider(fake), imagegen.WithRetry(imagegen.RetryPolicy{Jitter: 1.5})}, "Jitter 1.5"},
		{"bad weight", []imagegen.Option{imagegen.WithProvider(fake, imagegen.WithWeight(-1))}, "invalid weight"},
		{"nil catalog", []imagegen.Option{imagegen.WithProvider(fake), imagegen.WithCatalog(nil)}, "nil catalog"},
		{"bad limits", []imagegen.Option{imagegen.WithProvider(fake, imagegen.WithLimits(imagegen.Limits{RequestsPerMinute: -5}))}, "RequestsPerMinute"},
		{"limits with custom limiter", []imagegen.Option{imagegen.WithLimiter(imagegen.NewLocalLimiter()),
			imagegen.WithProvider(fake, imagegen.WithLimits(imagegen.Limits{RequestsPerMinute: 5}))}, ""},
		{"empty default model", []imagegen.Option{imagegen.WithProvider(fake), imagegen.WithDefaultModel("")}, "empty model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := imagegen.New(tt.opts...)
			if tt.want == "" {
				require.NoError(t, err, "a *LocalLimiter given to WithLimiter takes provider limits")
				return
			}
			assert.Nil(t, c)
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

// customLimiter is a Limiter that is not a *LocalLimiter.
type customLimiter struct{}

func (customLimiter) Acquire(context.Context, imagegen.LimitKey, int) (func(), error) {
	return func() {}, nil
}
func (customLimiter) Observe(imagegen.LimitKey, imagegen.LimitFeedback) {}

func TestLimitsNeedLocalLimiter(t *testing.T) {
	_, err := imagegen.New(imagegen.WithLimiter(customLimiter{}),
		imagegen.WithProvider(imagegentest.NewFakeProvider("fake"), imagegen.WithLimits(imagegen.Limits{RequestsPerMinute: 5})))

	assert.ErrorContains(t, err, "set limits on the Limiter given to WithLimiter")
}

func TestInputChecksBeforeAnyCall(t *testing.T) {
	negative := -1
	tests := []struct {
		name   string
		prompt string
		opts   imagegen.GenerateOptions
		field  string
		text   string
	}{
		{"empty prompt", "", imagegen.GenerateOptions{}, "prompt", "empty"},
		{"blank prompt", " \n\t", imagegen.GenerateOptions{}, "prompt", "empty"},
		{"long prompt", strings.Repeat("é", 32001), imagegen.GenerateOptions{}, "prompt", "32001"},
		{"too many images", "x", imagegen.GenerateOptions{N: 11}, "n", "1 to 10"},
		{"negative n", "x", imagegen.GenerateOptions{N: -1}, "n", "-1"},
		{"malformed size", "x", imagegen.GenerateOptions{Size: "big"}, "size", "WIDTHxHEIGHT"},
		{"zero edge", "x", imagegen.GenerateOptions{Size: "0x1024"}, "size", "0x1024"},
		{"negative compression", "x", imagegen.GenerateOptions{OutputFormat: "jpeg", OutputCompression: &negative}, "output_compression", "0 to 100"},
		{"unknown quality", "x", imagegen.GenerateOptions{Quality: "ultra"}, "quality", "gpt-image-2"},
		{"unknown format", "x", imagegen.GenerateOptions{OutputFormat: "bmp"}, "output_format", "bmp"},
		{"transparent jpeg", "x", imagegen.GenerateOptions{Background: "transparent", OutputFormat: "jpeg"}, "background", "png"},
		{"style on gpt image", "x", imagegen.GenerateOptions{Style: "vivid"}, "style", "gpt-image-2"},
		{"preset with size", "x", imagegen.GenerateOptions{Preset: imagegen.PresetWeb, Size: "1024x1024"}, "preset", "leave Size and Quality empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := imagegentest.NewFakeProvider("fake")
			c, err := imagegen.New(imagegen.WithProvider(fake))
			require.NoError(t, err)

			_, err = c.Generate(t.Context(), tt.prompt, tt.opts)

			var v *imagegen.ValidationError
			require.ErrorAs(t, err, &v)
			assert.Equal(t, tt.field, v.Field)
			assert.Contains(t, err.Error(), tt.text)
			assert.ErrorIs(t, err, imagegen.ErrInvalidRequest)
			assert.Zero(t, fake.Calls(), "rejected before any call")
		})
	}
}

func TestEditChecks(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake")
	c, err := imagegen.New(imagegen.WithProvider(fake))
	require.NoError(t, err)
	png := imagegentest.TinyPNG()

	_, err = c.Edit(t.Context(), "x", nil, imagegen.EditOptions{})
	assert.ErrorContains(t, err, "at least one input image")
	_, err = c.Edit(t.Context(), "x", []provider.File{{Name: "a.png", Data: png}}, imagegen.EditOptions{})
	assert.ErrorContains(t, err, "missing MediaType")
	_, err = c.Edit(t.Context(), "x", []provider.File{{Name: "a.png", MediaType: "image/png"}}, imagegen.EditOptions{})
	assert.ErrorContains(t, err, "no data")
	assert.Zero(t, fake.Calls())

	res, err := c.Edit(t.Context(), "add a hat", []provider.File{{Name: "a.png", MediaType: "image/png", Data: png}}, imagegen.EditOptions{})
	require.NoError(t, err)
	assert.Len(t, res.Images, 1)
	require.Len(t, fake.EditRequests(), 1)
	assert.Equal(t, "add a hat", fake.EditRequests()[0].Prompt)
}

func TestEditSkipsProvidersWithoutEditor(t *testing.T) {
	generateOnly := &funcProvider{name: "generate-only", fn: func(context.Context, *provider.Request) (*provider.Response, error) {
		t.Error("a provider without Edit must not be called for an edit")
		return nil, errors.New("unexpected")
	}}
	editor := imagegentest.NewFakeProvider("editor")
	c, err := imagegen.New(imagegen.WithProvider(generateOnly), imagegen.WithProvider(editor))
	require.NoError(t, err)

	res, err := c.Edit(t.Context(), "x", []provider.File{{MediaType: "image/png", Data: imagegentest.TinyPNG()}}, imagegen.EditOptions{})

	require.NoError(t, err)
	assert.Equal(t, "editor", res.Provider)

	c, err = imagegen.New(imagegen.WithProvider(generateOnly))
	require.NoError(t, err)
	_, err = c.Edit(t.Context(), "x", []provider.File{{MediaType: "image/png", Data: imagegentest.TinyPNG()}}, imagegen.EditOptions{})
	assert.ErrorContains(t, err, "no configured provider supports image edits")
}

// TestRetryAgainstTestServer drives the retry policy over HTTP.
func TestRetryAgainstTestServer(t *testing.T) {
	newClient := func(t *testing.T) (*imagegen.Client, *imagegentest.Server) {
		srv := imagegentest.NewServer()
		t.Cleanup(srv.Close)
		p, err := openai.New(openai.Options{APIKey: "k", BaseURL: srv.URL})
		require.NoError(t, err)
		c, err := imagegen.New(imagegen.WithProvider(p),
			imagegen.WithRetry(imagegen.RetryPolicy{MaxAttempts: 4, InitialDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}))
		require.NoError(t, err)
		return c, srv
	}

	t.Run("rate limit then success", func(t *testing.T) {
		c, srv := newClient(t)
		srv.Enqueue(imagegentest.RateLimited(300 * time.Millisecond))

		res, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

		require.NoError(t, err)
		assert.Equal(t, 2, res.Attempts)
		reqs := srv.Requests()
		require.Len(t, reqs, 2)
		assert.GreaterOrEqual(t, reqs[1].Time.Sub(reqs[0].Time), 300*time.Millisecond, "waits what the server asked")
	})
	t.Run("insufficient quota once", func(t *testing.T) {
		c, srv := newClient(t)
		srv.Enqueue(imagegentest.InsufficientQuota(), imagegentest.InsufficientQuota())

		_, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

		assert.ErrorIs(t, err, imagegen.ErrQuotaExceeded)
		assert.Equal(t, 1, srv.RequestCount())
	})
	t.Run("moderation once", func(t *testing.T) {
		c, srv := newClient(t)
		srv.Enqueue(imagegentest.ModerationBlocked(), imagegentest.ModerationBlocked())

		_, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

		assert.ErrorIs(t, err, imagegen.ErrContentRejected)
		assert.Equal(t, 1, srv.RequestCount())
	})
	t.Run("503 storm stops at max attempts", func(t *testing.T) {
		c, srv := newClient(t)
		for range 10 {
			srv.Enqueue(imagegentest.Overloaded())
		}

		_, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

		assert.ErrorIs(t, err, imagegen.ErrServer)
		assert.Equal(t, 4, srv.RequestCount())
	})
}

// TestCancelDuringBackoffFake checks, with imagegentest's fake provider,
// that a canceled backoff returns at once with both errors reachable.
func TestCancelDuringBackoffFake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := imagegentest.NewFakeProvider("fake")
		fake.Enqueue(imagegentest.FakeResultFrom(imagegentest.RateLimited(20 * time.Second)))
		c, err := imagegen.New(imagegen.WithProvider(fake))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())

		done := make(chan error)
		go func() {
			_, err := c.Generate(ctx, "x", imagegen.GenerateOptions{})
			done <- err
		}()
		synctest.Wait()
		canceledAt := time.Now()
		cancel()
		err = <-done

		assert.Less(t, time.Since(canceledAt), 10*time.Millisecond)
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, err, imagegen.ErrRateLimited)
		var last *imagegen.Error
		require.ErrorAs(t, err, &last)
		assert.Equal(t, 429, last.StatusCode)
		assert.Equal(t, 1, fake.Calls())
	})
}

// TestLimiterPauseSharedByCallers checks that one caller's 429 holds back
// the provider's other callers until the reset.
func TestLimiterPauseSharedByCallers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := imagegentest.NewFakeProvider("fake")
		fake.Enqueue(imagegentest.FakeResultFrom(imagegentest.RateLimited(5 * time.Second)))
		c, err := imagegen.New(imagegen.WithProvider(fake))
		require.NoError(t, err)
		start := time.Now()

		first := make(chan time.Duration)
		go func() {
			_, err := c.Generate(t.Context(), "first", imagegen.GenerateOptions{})
			assert.NoError(t, err)
			first <- time.Since(start)
		}()
		synctest.Wait() // The first call got its 429 and waits.

		_, err = c.Generate(t.Context(), "second", imagegen.GenerateOptions{})
		require.NoError(t, err)
		assert.GreaterOrEqual(t, time.Since(start), 5*time.Second, "the second caller waits for the reset too")
		assert.GreaterOrEqual(t, <-first, 5*time.Second)
		assert.Equal(t, 3, fake.Calls())
	})
}

func TestPromptLoggedOnlyAtDebugTruncated(t *testing.T) {
	prompt := "a lighthouse " + strings.Repeat("with many details ", 20) + "END-MARKER"
	for _, tt := range []struct {
		level slog.Level
		want  bool
	}{
		{slog.LevelInfo, false},
		{slog.LevelDebug, true},
	} {
		var logs bytes.Buffer
		c, err := imagegen.New(imagegen.WithProvider(imagegentest.NewFakeProvider("fake")),
			imagegen.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: tt.level}))))
		require.NoError(t, err)

		_, err = c.Generate(t.Context(), prompt, imagegen.GenerateOptions{})

		require.NoError(t, err)
		assert.Equal(t, tt.want, strings.Contains(logs.String(), "a lighthouse with many"), "level %v", tt.level)
		assert.NotContains(t, logs.String(), "END-MARKER", "the prompt is truncated")
	}
}

func TestNoRequestSentError(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake")
	fake.Enqueue(imagegentest.FakeResultFrom(imagegentest.InsufficientQuota()))
	c, err := imagegen.New(imagegen.WithProvider(fake))
	require.NoError(t, err)
	_, err = c.Generate(t.Context(), "x", imagegen.GenerateOptions{})
	require.ErrorIs(t, err, imagegen.ErrQuotaExceeded)

	// The quota failure opened the breaker: the next call sends nothing.
	_, err = c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

	assert.ErrorIs(t, err, imagegen.ErrBreakerOpen)
	assert.ErrorIs(t, err, imagegen.ErrQuotaExceeded, "the rejection keeps the class of the failure that opened the breaker")
	assert.Contains(t, err.Error(), "before any request was sent")
	assert.Contains(t, err.Error(), "passed over: fake (circuit breaker open until")
	var ae *imagegen.AttemptsError
	require.ErrorAs(t, err, &ae)
	assert.Empty(t, ae.Errors)
	assert.Len(t, ae.Skipped, 1)
	assert.Equal(t, 1, fake.Calls())
}

func TestCanceledBeforeStart(t *testing.T) {
	fake := imagegentest.NewFakeProvider("fake")
	c, err := imagegen.New(imagegen.WithProvider(fake, imagegen.WithLimits(imagegen.Limits{RequestsPerMinute: 60})))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	_, err = c.Generate(ctx, "x", imagegen.GenerateOptions{})

	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, err, imagegen.ErrCanceled)
	assert.Zero(t, fake.Calls())
}

func TestFallbackWarningCountsAttempts(t *testing.T) {
	a := imagegentest.NewFakeProvider("a")
	a.Enqueue(imagegentest.FakeResultFrom(imagegentest.InsufficientQuota()))
	c, err := imagegen.New(imagegen.WithProvider(a), imagegen.WithProvider(imagegentest.NewFakeProvider("b")))
	require.NoError(t, err)

	res, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

	require.NoError(t, err)
	assert.Contains(t, res.Warnings, "fell back to b (model gpt-image-2) after 1 failed attempt")
}
