package imagegentest_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/imagegentest"
)

// generateStatus sends one generation and returns its status and headers.
func generateStatus(t *testing.T, client openai.Client, n int64) (int, http.Header, *openai.Error) {
	t.Helper()
	var httpResp *http.Response
	_, err := client.Images.Generate(context.Background(),
		openai.ImageGenerateParams{Prompt: "quota", Size: "16x16", N: openai.Int(n), Model: "gpt-image-1"},
		option.WithResponseInto(&httpResp))
	if err == nil {
		return httpResp.StatusCode, httpResp.Header, nil
	}
	var apiErr *openai.Error
	require.ErrorAs(t, err, &apiErr)
	return apiErr.StatusCode, apiErr.Response.Header, apiErr
}

func TestServerQuotaRequests(t *testing.T) {
	clock := newTestClock()
	srv := newTestServer(t,
		imagegentest.WithQuota(imagegentest.Quota{RequestsPerMinute: 2}),
		imagegentest.WithClock(clock.Now))
	client := newOpenAIClient(srv)

	status, h, _ := generateStatus(t, client, 1)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "2", h.Get("X-Ratelimit-Limit-Requests"))
	assert.Equal(t, "1", h.Get("X-Ratelimit-Remaining-Requests"))
	assert.Equal(t, "30s", h.Get("X-Ratelimit-Reset-Requests"))
	assert.Empty(t, h.Get("X-Ratelimit-Limit-Tokens"), "no images limit configured")

	status, h, _ = generateStatus(t, client, 1)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "0", h.Get("X-Ratelimit-Remaining-Requests"))
	assert.Equal(t, "1m0s", h.Get("X-Ratelimit-Reset-Requests"))

	clock.Advance(10 * time.Second)
	status, h, apiErr := generateStatus(t, client, 1)
	require.Equal(t, http.StatusTooManyRequests, status)
	assert.Equal(t, "requests", apiErr.Type)
	assert.Equal(t, "rate_limit_exceeded", apiErr.Code)
	assert.Contains(t, apiErr.Message, "on requests per min (RPM): Limit 2, Used 2, Requested 1. Please try again in 20s.")
	assert.Equal(t, "20", h.Get("Retry-After"))
	assert.Equal(t, "20000", h.Get("Retry-After-Ms"))
	assert.Equal(t, "0", h.Get("X-Ratelimit-Remaining-Requests"))
	assert.Equal(t, "50s", h.Get("X-Ratelimit-Reset-Requests"))
	classified := imagegen.NewAPIError(imagegen.APIErrorInfo{
		StatusCode: status, Header: h, Type: apiErr.Type, Code: apiErr.Code, Now: clock.Now(),
	})
	assert.Equal(t, imagegen.ClassRateLimited, classified.Class)
	assert.Equal(t, 20*time.Second, classified.RetryAfter)

	clock.Advance(20 * time.Second)
	status, _, _ = generateStatus(t, client, 1)
	assert.Equal(t, http.StatusOK, status, "one request refilled after 30s")

	stats := srv.Stats()
	assert.Equal(t, 4, stats.Requests)
	assert.Equal(t, 3, stats.Succeeded)
	assert.Equal(t, 1, stats.RateLimited)
}

func TestServerQuotaImages(t *testing.T) {
	clock := newTestClock()
	srv := newTestServer(t,
		imagegentest.WithQuota(imagegentest.Quota{ImagesPerMinute: 5, Minute: time.Second}),
		imagegentest.WithClock(clock.Now))
	client := newOpenAIClient(srv)

	status, h, _ := generateStatus(t, client, 3)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "5", h.Get("X-Ratelimit-Limit-Tokens"))
	assert.Equal(t, "2", h.Get("X-Ratelimit-Remaining-Tokens"))
	assert.Equal(t, "600ms", h.Get("X-Ratelimit-Reset-Tokens"))

	status, h, apiErr := generateStatus(t, client, 3)
	require.Equal(t, http.StatusTooManyRequests, status)
	assert.Equal(t, "tokens", apiErr.Type)
	assert.Contains(t, apiErr.Message, "images per min (IPM): Limit 5, Used 3, Requested 3.")
	assert.Equal(t, "200", h.Get("Retry-After-Ms"))
	assert.Equal(t, "1", h.Get("Retry-After"), "seconds round up")

	status, h, apiErr = generateStatus(t, client, 6)
	require.Equal(t, http.StatusTooManyRequests, status)
	assert.Contains(t, apiErr.Message, "Request too large")
	assert.Empty(t, h.Get("Retry-After"), "a request that never fits has no retry time")

	clock.Advance(200 * time.Millisecond)
	status, _, _ = generateStatus(t, client, 3)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, 6, srv.Stats().Images)
}

func TestServerQuotaBothLimits(t *testing.T) {
	clock := newTestClock()
	srv := newTestServer(t,
		imagegentest.WithQuota(imagegentest.Quota{RequestsPerMinute: 10, ImagesPerMinute: 2}),
		imagegentest.WithClock(clock.Now))
	client := newOpenAIClient(srv)

	status, _, _ := generateStatus(t, client, 2)
	require.Equal(t, http.StatusOK, status)
	status, h, _ := generateStatus(t, client, 1)

	require.Equal(t, http.StatusTooManyRequests, status)
	assert.Equal(t, "9", h.Get("X-Ratelimit-Remaining-Requests"), "a rejected request takes no request token")
	assert.Equal(t, "0", h.Get("X-Ratelimit-Remaining-Tokens"))
}

func TestServerQuotaSkipsScriptedAndInvalid(t *testing.T) {
	clock := newTestClock()
	srv := newTestServer(t,
		imagegentest.WithQuota(imagegentest.Quota{RequestsPerMinute: 1}),
		imagegentest.WithClock(clock.Now))
	client := newOpenAIClient(srv)
	srv.Enqueue(imagegentest.ServerError(500))

	status, _, _ := generateStatus(t, client, 1)
	assert.Equal(t, http.StatusInternalServerError, status)
	status, _, _ = generateStatus(t, client, 11)
	assert.Equal(t, http.StatusBadRequest, status, "validation comes before the quota")
	status, _, _ = generateStatus(t, client, 1)
	assert.Equal(t, http.StatusOK, status)
	status, _, _ = generateStatus(t, client, 1)
	assert.Equal(t, http.StatusTooManyRequests, status)
}
