package imagegentest_test

import (
	"context"
	"encoding/base64"
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

func TestScriptedErrors(t *testing.T) {
	tests := []struct {
		name        string
		resp        imagegentest.Response
		wantStatus  int
		wantType    string
		wantCode    string
		wantParam   string
		wantMessage string // substring
		wantHeader  map[string]string
		wantClass   imagegen.Class
	}{
		{
			name:        "rate limited",
			resp:        imagegentest.RateLimited(1500 * time.Millisecond),
			wantStatus:  http.StatusTooManyRequests,
			wantType:    "requests",
			wantCode:    "rate_limit_exceeded",
			wantMessage: "Please try again in 1.5s.",
			wantHeader: map[string]string{
				"Retry-After":                    "2",
				"Retry-After-Ms":                 "1500",
				"X-Ratelimit-Limit-Requests":     "5",
				"X-Ratelimit-Remaining-Requests": "0",
				"X-Ratelimit-Reset-Requests":     "1.5s",
			},
			wantClass: imagegen.ClassRateLimited,
		},
		{
			name:        "rate limited without retry-after",
			resp:        imagegentest.RateLimited(0),
			wantStatus:  http.StatusTooManyRequests,
			wantType:    "requests",
			wantCode:    "rate_limit_exceeded",
			wantMessage: "Please try again later.",
			wantHeader:  map[string]string{"Retry-After": "", "Retry-After-Ms": "", "X-Ratelimit-Remaining-Requests": "0"},
			wantClass:   imagegen.ClassRateLimited,
		},
		{
			name:        "insufficient quota",
			resp:        imagegentest.InsufficientQuota(),
			wantStatus:  http.StatusTooManyRequests,
			wantType:    "insufficient_quota",
			wantCode:    "insufficient_quota",
			wantMessage: "You exceeded your current quota",
			wantClass:   imagegen.ClassQuotaExceeded,
		},
		{
			name:        "billing hard limit",
			resp:        imagegentest.BillingHardLimit(),
			wantStatus:  http.StatusBadRequest,
			wantType:    "invalid_request_error",
			wantCode:    "billing_hard_limit_reached",
			wantMessage: "Billing hard limit has been reached",
			wantClass:   imagegen.ClassQuotaExceeded,
		},
		{
			name:        "organization not verified",
			resp:        imagegentest.OrganizationNotVerified("gpt-image-2"),
			wantStatus:  http.StatusForbidden,
			wantType:    "invalid_request_error",
			wantMessage: "Your organization must be verified to use the model `gpt-image-2`. Please go to: https://platform.openai.com/settings/organization/general",
			wantClass:   imagegen.ClassNotEntitled,
		},
		{
			name:        "invalid api key",
			resp:        imagegentest.InvalidAPIKey(),
			wantStatus:  http.StatusUnauthorized,
			wantType:    "invalid_request_error",
			wantCode:    "invalid_api_key",
			wantMessage: "Incorrect API key provided: " + imagegentest.MaskedAPIKey,
			wantClass:   imagegen.ClassAuthentication,
		},
		{
			name:        "model not found",
			resp:        imagegentest.ModelNotFound("gpt-image-9"),
			wantStatus:  http.StatusNotFound,
			wantType:    "invalid_request_error",
			wantCode:    "model_not_found",
			wantMessage: "The model `gpt-image-9` does not exist",
			wantClass:   imagegen.ClassNotFound,
		},
		{
			name:        "moderation blocked",
			resp:        imagegentest.ModerationBlocked(),
			wantStatus:  http.StatusBadRequest,
			wantType:    "image_generation_user_error",
			wantCode:    "moderation_blocked",
			wantMessage: "rejected by the safety system",
			wantClass:   imagegen.ClassContentRejected,
		},
		{
			name:        "content policy violation",
			resp:        imagegentest.ContentPolicyViolation(),
			wantStatus:  http.StatusBadRequest,
			wantType:    "invalid_request_error",
			wantCode:    "content_policy_violation",
			wantMessage: "safety system",
			wantClass:   imagegen.ClassContentRejected,
		},
		{
			name:        "unknown parameter",
			resp:        imagegentest.InvalidParameter("response_format", imagegentest.CodeUnknownParameter),
			wantStatus:  http.StatusBadRequest,
			wantType:    "invalid_request_error",
			wantCode:    "unknown_parameter",
			wantParam:   "response_format",
			wantMessage: "Unknown parameter: 'response_format'.",
			wantClass:   imagegen.ClassInvalidRequest,
		},
		{
			name:        "invalid value",
			resp:        imagegentest.InvalidParameter("size", imagegentest.CodeInvalidValue),
			wantStatus:  http.StatusBadRequest,
			wantType:    "invalid_request_error",
			wantCode:    "invalid_value",
			wantParam:   "size",
			wantMessage: "Invalid value for 'size'.",
			wantClass:   imagegen.ClassInvalidRequest,
		},
		{
			name:        "server error 500",
			resp:        imagegentest.ServerError(500),
			wantStatus:  http.StatusInternalServerError,
			wantType:    "server_error",
			wantMessage: imagegentest.MessageServerError,
			wantClass:   imagegen.ClassServer,
		},
		{
			name:        "server error 502",
			resp:        imagegentest.ServerError(502),
			wantStatus:  http.StatusBadGateway,
			wantType:    "server_error",
			wantMessage: imagegentest.MessageServerError,
			wantClass:   imagegen.ClassServer,
		},
		{
			name:        "overloaded",
			resp:        imagegentest.Overloaded(),
			wantStatus:  http.StatusServiceUnavailable,
			wantType:    "server_error",
			wantMessage: imagegentest.MessageOverloaded,
			wantClass:   imagegen.ClassServer,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			client := newOpenAIClient(srv)
			srv.Enqueue(tt.resp)

			_, err := client.Images.Generate(context.Background(), openai.ImageGenerateParams{Prompt: "x"})

			var apiErr *openai.Error
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, tt.wantStatus, apiErr.StatusCode)
			assert.Equal(t, tt.wantType, apiErr.Type)
			assert.Equal(t, tt.wantCode, apiErr.Code)
			assert.Equal(t, tt.wantParam, apiErr.Param)
			assert.Contains(t, apiErr.Message, tt.wantMessage)
			header := apiErr.Response.Header
			assert.Regexp(t, requestIDPattern, header.Get("X-Request-Id"))
			assert.Equal(t, "application/json", header.Get("Content-Type"))
			for name, want := range tt.wantHeader {
				assert.Equal(t, want, header.Get(name), name)
			}

			classified := imagegen.NewAPIError(imagegen.APIErrorInfo{
				StatusCode: apiErr.StatusCode,
				Header:     header,
				Type:       apiErr.Type,
				Code:       apiErr.Code,
				Param:      apiErr.Param,
				Message:    apiErr.Message,
			})
			assert.Equal(t, tt.wantClass, classified.Class)
			assert.NotContains(t, classified.Error(), imagegentest.MaskedAPIKey)
		})
	}
}

func TestScriptedErrorBodyIsExact(t *testing.T) {
	srv := newTestServer(t)
	srv.Enqueue(imagegentest.ModelNotFound("gpt-image-9"))

	status, header, body := postRaw(t, srv, "/images/generations", "application/json", `{"prompt":"x"}`)

	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "application/json", header.Get("Content-Type"))
	assert.JSONEq(t, `{"error":{
		"message":"The model `+"`gpt-image-9`"+` does not exist or you do not have access to it.",
		"type":"invalid_request_error","param":null,"code":"model_not_found"}}`, body)
}

func TestHTMLResponses(t *testing.T) {
	tests := []struct {
		name       string
		resp       imagegentest.Response
		wantStatus int
		wantTitle  string
	}{
		{"proxy error", imagegentest.HTMLProxyError(http.StatusBadGateway), http.StatusBadGateway, "<title>502 Bad Gateway</title>"},
		{"timeout after delay", imagegentest.Timeout(time.Millisecond), http.StatusGatewayTimeout, "<title>504 Gateway Timeout</title>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			srv.Enqueue(tt.resp)

			status, header, body := postRaw(t, srv, "/images/generations", "application/json", `{"prompt":"x"}`)

			assert.Equal(t, tt.wantStatus, status)
			assert.Equal(t, "text/html", header.Get("Content-Type"))
			assert.Contains(t, body, tt.wantTitle)
			assert.Regexp(t, requestIDPattern, header.Get("X-Request-Id"))
			assert.Equal(t, 1, srv.Stats().Failed)
		})
	}
}

func TestHTMLProxyErrorThroughOpenAI(t *testing.T) {
	srv := newTestServer(t)
	client := newOpenAIClient(srv)
	srv.Enqueue(imagegentest.HTMLProxyError(0))

	_, err := client.Images.Generate(context.Background(), openai.ImageGenerateParams{Prompt: "x"})

	var apiErr *openai.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusBadGateway, apiErr.StatusCode)
	assert.Empty(t, apiErr.Type)
	assert.Empty(t, apiErr.Code)
}

func TestScriptedSuccessBodies(t *testing.T) {
	srv := newTestServer(t)
	client := newOpenAIClient(srv)
	srv.Enqueue(imagegentest.EmptyData(), imagegentest.BadBase64())

	empty, err := client.Images.Generate(context.Background(), openai.ImageGenerateParams{Prompt: "x"})
	require.NoError(t, err)
	assert.Empty(t, empty.Data)

	bad, err := client.Images.Generate(context.Background(), openai.ImageGenerateParams{Prompt: "x"})
	require.NoError(t, err)
	require.Len(t, bad.Data, 1)
	_, err = base64.StdEncoding.DecodeString(bad.Data[0].B64JSON)
	assert.Error(t, err)
	assert.Equal(t, 2, srv.Stats().Succeeded)
	assert.Zero(t, srv.Stats().Images, "scripted bodies carry no counted images")
}

func TestTimeoutHoldsRequest(t *testing.T) {
	srv := newTestServer(t)
	client := newOpenAIClient(srv)
	srv.Enqueue(imagegentest.Timeout(time.Hour))

	_, err := client.Images.Generate(context.Background(), openai.ImageGenerateParams{Prompt: "x"},
		option.WithRequestTimeout(50*time.Millisecond))

	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestEnqueueOrder(t *testing.T) {
	srv := newTestServer(t)
	client := newOpenAIClient(srv)
	srv.Enqueue(imagegentest.ServerError(500), imagegentest.RateLimited(time.Second))
	srv.Enqueue(imagegentest.Slow(time.Millisecond))
	assert.Equal(t, 3, srv.Pending())

	var statuses []int
	for range 4 {
		_, err := client.Images.Generate(context.Background(), openai.ImageGenerateParams{Prompt: "x", Size: "16x16"})
		var apiErr *openai.Error
		switch {
		case err == nil:
			statuses = append(statuses, http.StatusOK)
		case assert.ErrorAs(t, err, &apiErr):
			statuses = append(statuses, apiErr.StatusCode)
		}
	}

	assert.Equal(t, []int{500, 429, 200, 200}, statuses)
	assert.Zero(t, srv.Pending())
	stats := srv.Stats()
	assert.Equal(t, 4, stats.Requests)
	assert.Equal(t, 2, stats.Failed)
	assert.Equal(t, 1, stats.RateLimited)
	assert.Equal(t, 2, stats.Succeeded)
}

func TestScriptedHeaderOnNormalAnswer(t *testing.T) {
	srv := newTestServer(t)
	client := newOpenAIClient(srv)
	h := http.Header{}
	h.Set("X-Ratelimit-Remaining-Requests", "3")
	h.Set("X-Request-Id", "req_fixed")
	srv.Enqueue(imagegentest.Response{Header: h})

	var httpResp *http.Response
	resp, err := client.Images.Generate(context.Background(), openai.ImageGenerateParams{Prompt: "x", Size: "16x16"},
		option.WithResponseInto(&httpResp))

	require.NoError(t, err)
	assert.Len(t, resp.Data, 1)
	assert.Equal(t, "3", httpResp.Header.Get("X-Ratelimit-Remaining-Requests"))
	assert.Equal(t, "req_fixed", httpResp.Header.Get("X-Request-Id"))
}

func TestSetHandler(t *testing.T) {
	srv := newTestServer(t, imagegentest.WithHandler(func(r *imagegentest.RecordedRequest) *imagegentest.Response {
		if r.Body["prompt"] == "blocked" {
			return new(imagegentest.ModerationBlocked())
		}
		return nil
	}))
	client := newOpenAIClient(srv)

	_, err := client.Images.Generate(context.Background(), openai.ImageGenerateParams{Prompt: "blocked"})
	var apiErr *openai.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "moderation_blocked", apiErr.Code)

	_, err = client.Images.Generate(context.Background(), openai.ImageGenerateParams{Prompt: "fine", Size: "16x16"})
	assert.NoError(t, err)

	srv.Enqueue(imagegentest.ServerError(500))
	_, err = client.Images.Generate(context.Background(), openai.ImageGenerateParams{Prompt: "blocked"})
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusInternalServerError, apiErr.StatusCode, "the queue comes before the handler")

	srv.SetHandler(nil)
	_, err = client.Images.Generate(context.Background(), openai.ImageGenerateParams{Prompt: "blocked", Size: "16x16"})
	assert.NoError(t, err)
}
