package openai_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/imagegentest"
	"github.com/imagegen-go/imagegen/provider"
	"github.com/imagegen-go/imagegen/provider/openai"
)

// setup starts a test server and a Client with one OpenAI provider on it,
// with retries off unless policy sets MaxAttempts.
func setup(t *testing.T, policy imagegen.RetryPolicy, serverOpts ...imagegentest.Option) (*imagegen.Client, *imagegentest.Server) {
	t.Helper()
	srv := imagegentest.NewServer(serverOpts...)
	t.Cleanup(srv.Close)

	p, err := openai.New(openai.Options{APIKey: "sk-test-secret-key-0123456789", BaseURL: srv.URL, HTTPClient: srv.Client()})
	require.NoError(t, err)
	if policy.MaxAttempts == 0 {
		policy.MaxAttempts = 1
	}
	c, err := imagegen.New(imagegen.WithProvider(p), imagegen.WithRetry(policy))
	require.NoError(t, err)
	return c, srv
}

func decode(t *testing.T, data []byte) (format string, width, height int) {
	t.Helper()
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	require.NoError(t, err)
	return format, cfg.Width, cfg.Height
}

func TestGenerateEndToEnd(t *testing.T) {
	c, srv := setup(t, imagegen.RetryPolicy{})

	res, err := c.Generate(t.Context(), "a lighthouse at dawn", imagegen.GenerateOptions{Size: "1536x1024", Quality: "low", N: 2})

	require.NoError(t, err)
	require.Len(t, res.Images, 2)
	for _, img := range res.Images {
		format, w, h := decode(t, img.Data)
		assert.Equal(t, "png", format)
		assert.Equal(t, 1536, w)
		assert.Equal(t, 1024, h)
		assert.Equal(t, "image/png", img.MediaType)
	}
	assert.Equal(t, "openai", res.Provider)
	assert.Equal(t, imagegen.DefaultModel, res.Model)
	assert.Equal(t, "1536x1024", res.Size)
	assert.Equal(t, "low", res.Quality)
	assert.Equal(t, 1, res.Attempts)
	assert.False(t, res.Cached)
	assert.NotEmpty(t, res.RequestID)
	require.NotNil(t, res.Usage)
	assert.Equal(t, int64(2*400), res.Usage.OutputTokens, "two low-quality 1536x1024 images")
	assert.Positive(t, res.Usage.InputTextTokens)

	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "/v1/images/generations", reqs[0].Path)
	assert.Equal(t, "Bearer sk-test-secret-key-0123456789", reqs[0].Header.Get("Authorization"))
	assert.Equal(t, "a lighthouse at dawn", reqs[0].Body["prompt"])
	assert.Equal(t, imagegen.DefaultModel, reqs[0].Body["model"])
	assert.EqualValues(t, 2, reqs[0].Body["n"])
	assert.NotContains(t, reqs[0].Body, "response_format", "GPT Image models reject response_format")
}

func TestGenerateJPEGAndExtraFields(t *testing.T) {
	c, srv := setup(t, imagegen.RetryPolicy{})
	compression := 80

	res, err := c.Generate(t.Context(), "a red cube", imagegen.GenerateOptions{
		Size: "1024x1024", OutputFormat: "jpeg", OutputCompression: &compression,
		SafetyIdentifier: "user-hash-1", Extra: map[string]any{"future_field": "x"},
	})

	require.NoError(t, err)
	format, _, _ := decode(t, res.Images[0].Data)
	assert.Equal(t, "jpeg", format)
	body := srv.Requests()[0].Body
	assert.EqualValues(t, 80, body["output_compression"])
	assert.Equal(t, "user-hash-1", body["safety_identifier"])
	assert.Equal(t, "x", body["future_field"])
}

func TestGenerateURLResponse(t *testing.T) {
	c, _ := setup(t, imagegen.RetryPolicy{}, imagegentest.WithURLResponses())

	res, err := c.Generate(t.Context(), "a boat", imagegen.GenerateOptions{Size: "1024x1024"})

	require.NoError(t, err)
	_, w, h := decode(t, res.Images[0].Data)
	assert.Equal(t, 1024, w)
	assert.Equal(t, 1024, h)
}

func TestGenerateSendsHeaders(t *testing.T) {
	srv := imagegentest.NewServer()
	t.Cleanup(srv.Close)
	p, err := openai.New(openai.Options{
		APIKey: "k", BaseURL: srv.URL, Organization: "org-1", Project: "proj-1",
		Header: http.Header{"X-Gateway-Route": {"images"}},
	})
	require.NoError(t, err)

	_, err = p.Generate(t.Context(), &provider.Request{Prompt: "x"})

	require.NoError(t, err)
	h := srv.Requests()[0].Header
	assert.Equal(t, "org-1", h.Get("OpenAI-Organization"))
	assert.Equal(t, "proj-1", h.Get("OpenAI-Project"))
	assert.Equal(t, "images", h.Get("X-Gateway-Route"))
}

// TestErrorTable drives one request per row of OpenAI's error table through
// the Client and checks every field of the typed error.
func TestErrorTable(t *testing.T) {
	tests := []struct {
		name      string
		answer    imagegentest.Response
		class     imagegen.Class
		sentinel  error
		status    int
		typ       string
		code      string
		param     string
		message   string // a substring of the message
		wantRetry bool   // whether RetryAfter is set
	}{
		{"rate limit", imagegentest.RateLimited(2 * time.Second), imagegen.ClassRateLimited, imagegen.ErrRateLimited,
			429, "requests", "rate_limit_exceeded", "", "Rate limit", true},
		{"insufficient quota", imagegentest.InsufficientQuota(), imagegen.ClassQuotaExceeded, imagegen.ErrQuotaExceeded,
			429, "insufficient_quota", "insufficient_quota", "", "exceeded your current quota", false},
		{"billing hard limit", imagegentest.BillingHardLimit(), imagegen.ClassQuotaExceeded, imagegen.ErrQuotaExceeded,
			400, "invalid_request_error", "billing_hard_limit_reached", "", "Billing hard limit", false},
		{"organization not verified", imagegentest.OrganizationNotVerified("gpt-image-2"), imagegen.ClassNotEntitled, imagegen.ErrNotEntitled,
			403, "invalid_request_error", "", "", "gpt-image-2", false},
		{"invalid key", imagegentest.InvalidAPIKey(), imagegen.ClassAuthentication, imagegen.ErrAuthentication,
			401, "invalid_request_error", "invalid_api_key", "", "Incorrect API key provided", false},
		{"model not found", imagegentest.ModelNotFound("gpt-image-9"), imagegen.ClassNotFound, imagegen.ErrNotFound,
			404, "invalid_request_error", "model_not_found", "", "gpt-image-9", false},
		{"gpt image moderation", imagegentest.ModerationBlocked(), imagegen.ClassContentRejected, imagegen.ErrContentRejected,
			400, "image_generation_user_error", "moderation_blocked", "", "safety system", false},
		{"dall-e moderation", imagegentest.ContentPolicyViolation(), imagegen.ClassContentRejected, imagegen.ErrContentRejected,
			400, "invalid_request_error", "content_policy_violation", "", "safety system", false},
		{"unknown parameter", imagegentest.InvalidParameter("response_format", "unknown_parameter"), imagegen.ClassInvalidRequest, imagegen.ErrInvalidRequest,
			400, "invalid_request_error", "unknown_parameter", "response_format", "response_format", false},
		{"invalid value", imagegentest.InvalidParameter("size", "invalid_value"), imagegen.ClassInvalidRequest, imagegen.ErrInvalidRequest,
			400, "invalid_request_error", "invalid_value", "size", "size", false},
		{"server error", imagegentest.ServerError(500), imagegen.ClassServer, imagegen.ErrServer,
			500, "server_error", "", "", "server had an error", false},
		{"bad gateway", imagegentest.ServerError(502), imagegen.ClassServer, imagegen.ErrServer,
			502, "server_error", "", "", "", false},
		{"overloaded", imagegentest.Overloaded(), imagegen.ClassServer, imagegen.ErrServer,
			503, "server_error", "", "", "overloaded", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv := setup(t, imagegen.RetryPolicy{})
			srv.Enqueue(tt.answer)

			_, err := c.Generate(t.Context(), "a lighthouse", imagegen.GenerateOptions{})

			require.Error(t, err)
			assert.ErrorIs(t, err, tt.sentinel)
			var e *imagegen.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, "openai", e.Provider)
			assert.Equal(t, imagegen.DefaultModel, e.Model)
			assert.Equal(t, tt.class, e.Class)
			assert.Equal(t, tt.status, e.StatusCode)
			assert.Equal(t, tt.typ, e.Type)
			assert.Equal(t, tt.code, e.Code)
			assert.Equal(t, tt.param, e.Param)
			assert.Contains(t, e.Message, tt.message)
			assert.True(t, strings.HasPrefix(e.RequestID, "req_"), "request id %q", e.RequestID)
			assert.Equal(t, tt.wantRetry, e.RetryAfter > 0, "RetryAfter %v", e.RetryAfter)
			assert.NotContains(t, err.Error(), "sk-test-secret")
			assert.NotContains(t, err.Error(), "sk-abc12")
		})
	}
}

func TestRetryAfterFromServer(t *testing.T) {
	c, srv := setup(t, imagegen.RetryPolicy{})
	srv.Enqueue(imagegentest.RateLimited(1500 * time.Millisecond))

	_, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

	var e *imagegen.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, 1500*time.Millisecond, e.RetryAfter, "retry-after-ms wins over whole-second retry-after")
	assert.True(t, e.RateLimit.Requests.Known)
	assert.Zero(t, e.RateLimit.Requests.Remaining)
}

func TestBadAnswers(t *testing.T) {
	tests := []struct {
		name   string
		answer imagegentest.Response
		class  imagegen.Class
		text   string
	}{
		{"html from a proxy", imagegentest.HTMLProxyError(502), imagegen.ClassServer, "without an OpenAI error body"},
		{"html 200", imagegentest.Response{Status: 200, Header: http.Header{"Content-Type": {"text/html"}}, Body: "<html>login</html>"}, imagegen.ClassOutcomeUnknown, "text/html"},
		{"empty data", imagegentest.EmptyData(), imagegen.ClassOutcomeUnknown, "without any image"},
		{"bad base64", imagegentest.BadBase64(), imagegen.ClassOutcomeUnknown, "base64"},
		{"dropped connection", imagegentest.DropConnection(), imagegen.ClassOutcomeUnknown, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv := setup(t, imagegen.RetryPolicy{})
			srv.Enqueue(tt.answer)

			_, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

			var e *imagegen.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tt.class, e.Class, "error: %v", err)
			assert.Contains(t, err.Error(), tt.text)
		})
	}
}

func TestRetryAgainstServer(t *testing.T) {
	c, srv := setup(t, imagegen.RetryPolicy{MaxAttempts: 3, InitialDelay: time.Millisecond, NoJitter: true})
	srv.Enqueue(imagegentest.RateLimited(10*time.Millisecond), imagegentest.Overloaded())

	res, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

	require.NoError(t, err)
	assert.Equal(t, 3, res.Attempts)
	assert.Equal(t, 3, srv.RequestCount())
}

func TestAttemptTimeoutAgainstSlowServer(t *testing.T) {
	c, srv := setup(t, imagegen.RetryPolicy{AttemptTimeout: 50 * time.Millisecond})
	srv.Enqueue(imagegentest.Timeout(time.Minute))

	_, err := c.Generate(t.Context(), "x", imagegen.GenerateOptions{})

	assert.ErrorIs(t, err, imagegen.ErrTimeout)
}

func TestEdit(t *testing.T) {
	c, srv := setup(t, imagegen.RetryPolicy{})
	src := imagegentest.TinyPNG()

	res, err := c.Edit(t.Context(), "add a hat", []provider.File{{Name: "cat.png", MediaType: "image/png", Data: src}},
		imagegen.EditOptions{GenerateOptions: imagegen.GenerateOptions{Size: "1024x1024"}, InputFidelity: "high"})

	require.NoError(t, err)
	_, w, _ := decode(t, res.Images[0].Data)
	assert.Equal(t, 1024, w)
	req := srv.Requests()[0]
	assert.Equal(t, "/v1/images/edits", req.Path)
}

func TestNewValidatesOptions(t *testing.T) {
	tests := []struct {
		name string
		opts openai.Options
		want string
	}{
		{"missing key", openai.Options{}, "missing APIKey"},
		{"bad base URL", openai.Options{APIKey: "k", BaseURL: "ftp://x"}, "invalid BaseURL"},
		{"relative base URL", openai.Options{APIKey: "k", BaseURL: "/v1"}, "invalid BaseURL"},
		{"negative size cap", openai.Options{APIKey: "k", MaxImageBytes: -1}, "invalid MaxImageBytes"},
		{"negative timeout", openai.Options{APIKey: "k", DownloadTimeout: -time.Second}, "invalid DownloadTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := openai.New(tt.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestProviderHonoursCancel(t *testing.T) {
	srv := imagegentest.NewServer()
	t.Cleanup(srv.Close)
	srv.Enqueue(imagegentest.Timeout(time.Minute))
	p, err := openai.New(openai.Options{APIKey: "k", BaseURL: srv.URL})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()

	_, err = p.Generate(ctx, &provider.Request{Prompt: "x"})

	var e *imagegen.Error
	require.True(t, errors.As(err, &e))
	assert.Equal(t, imagegen.ClassTimeout, e.Class)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// bearerTransport adds a credential to every request, as a custom
// HTTPClient may do for a gateway.
type bearerTransport struct{}

func (bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer transport-secret")
	return http.DefaultTransport.RoundTrip(r)
}

func TestDownloadsCarryNoCredentials(t *testing.T) {
	var imageAuth string
	images := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		imageAuth = r.Header.Get("Authorization")
		_, _ = w.Write(imagegentest.TinyPNG())
	}))
	t.Cleanup(images.Close)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"created":1,"data":[{"url":"` + images.URL + `/image.png"}]}`))
	}))
	t.Cleanup(api.Close)
	p, err := openai.New(openai.Options{BaseURL: api.URL + "/v1", HTTPClient: &http.Client{Transport: bearerTransport{}}})
	require.NoError(t, err)

	resp, err := p.Generate(t.Context(), &provider.Request{Prompt: "x"})

	require.NoError(t, err)
	assert.Len(t, resp.Images, 1)
	assert.Empty(t, imageAuth, "the image host gets no credential from HTTPClient")
}
