package imagegen_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagegen-go/imagegen"
)

func TestNewAPIErrorClass(t *testing.T) {
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		name     string
		info     imagegen.APIErrorInfo
		want     imagegen.Class
		sentinel error
	}{
		{"rate limit", imagegen.APIErrorInfo{StatusCode: 429, Type: "requests", Code: "rate_limit_exceeded", Message: "Rate limit reached for images per minute"}, imagegen.ClassRateLimited, imagegen.ErrRateLimited},
		{"rate limit status only", imagegen.APIErrorInfo{StatusCode: 429}, imagegen.ClassRateLimited, imagegen.ErrRateLimited},
		{"insufficient quota", imagegen.APIErrorInfo{StatusCode: 429, Type: "insufficient_quota", Code: "insufficient_quota", Message: "You exceeded your current quota"}, imagegen.ClassQuotaExceeded, imagegen.ErrQuotaExceeded},
		{"quota by message", imagegen.APIErrorInfo{StatusCode: 429, Message: "You exceeded your current quota, please check your plan"}, imagegen.ClassQuotaExceeded, imagegen.ErrQuotaExceeded},
		{"billing hard limit", imagegen.APIErrorInfo{StatusCode: 400, Type: "invalid_request_error", Code: "billing_hard_limit_reached"}, imagegen.ClassQuotaExceeded, imagegen.ErrQuotaExceeded},
		{"organization not verified", imagegen.APIErrorInfo{StatusCode: 403, Message: "Your organization must be verified to use the model `gpt-image-2`."}, imagegen.ClassNotEntitled, imagegen.ErrNotEntitled},
		{"invalid key", imagegen.APIErrorInfo{StatusCode: 401, Type: "invalid_request_error", Code: "invalid_api_key"}, imagegen.ClassAuthentication, imagegen.ErrAuthentication},
		{"unauthorized", imagegen.APIErrorInfo{StatusCode: 401}, imagegen.ClassAuthentication, imagegen.ErrAuthentication},
		{"model not found", imagegen.APIErrorInfo{StatusCode: 404, Code: "model_not_found"}, imagegen.ClassNotFound, imagegen.ErrNotFound},
		{"azure deployment not found", imagegen.APIErrorInfo{StatusCode: 404, Code: "DeploymentNotFound"}, imagegen.ClassNotFound, imagegen.ErrNotFound},
		{"gpt image moderation", imagegen.APIErrorInfo{StatusCode: 400, Type: "image_generation_user_error", Code: "moderation_blocked"}, imagegen.ClassContentRejected, imagegen.ErrContentRejected},
		{"dall-e moderation", imagegen.APIErrorInfo{StatusCode: 400, Type: "invalid_request_error", Code: "content_policy_violation"}, imagegen.ClassContentRejected, imagegen.ErrContentRejected},
		{"unknown parameter", imagegen.APIErrorInfo{StatusCode: 400, Type: "invalid_request_error", Code: "unknown_parameter", Param: "response_format"}, imagegen.ClassInvalidRequest, imagegen.ErrInvalidRequest},
		{"invalid value", imagegen.APIErrorInfo{StatusCode: 400, Type: "invalid_request_error", Code: "invalid_value", Param: "size"}, imagegen.ClassInvalidRequest, imagegen.ErrInvalidRequest},
		{"server error 500", imagegen.APIErrorInfo{StatusCode: 500, Type: "server_error"}, imagegen.ClassServer, imagegen.ErrServer},
		{"bad gateway", imagegen.APIErrorInfo{StatusCode: 502}, imagegen.ClassServer, imagegen.ErrServer},
		{"overloaded", imagegen.APIErrorInfo{StatusCode: 503, Type: "server_error", Message: "The engine is currently overloaded"}, imagegen.ClassServer, imagegen.ErrServer},
		{"conflict", imagegen.APIErrorInfo{StatusCode: 409}, imagegen.ClassServer, imagegen.ErrServer},
		{"request timeout", imagegen.APIErrorInfo{StatusCode: 408}, imagegen.ClassTimeout, imagegen.ErrTimeout},
		{"gateway timeout", imagegen.APIErrorInfo{StatusCode: 504}, imagegen.ClassTimeout, imagegen.ErrTimeout},
		{"teapot", imagegen.APIErrorInfo{StatusCode: 418}, imagegen.ClassUnknown, imagegen.ErrUnknown},
		{"should-retry header kept", imagegen.APIErrorInfo{StatusCode: 500, Header: h("X-Should-Retry", "false")}, imagegen.ClassServer, imagegen.ErrServer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := imagegen.NewAPIError(tt.info)
			assert.Equal(t, tt.want, e.Class)
			assert.ErrorIs(t, e, tt.sentinel)
			for _, c := range imagegen.Classes() {
				if c != tt.want {
					assert.NotErrorIs(t, e, c.Sentinel(), "must match only its own class")
				}
			}
		})
	}
}

func TestNewAPIErrorFields(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	h := http.Header{}
	h.Set("X-Request-Id", "req_abc")
	h.Set("Retry-After", "Fri, 04 Dec 2026 12:00:07 GMT")
	h.Set("X-Should-Retry", "true")

	e := imagegen.NewAPIError(imagegen.APIErrorInfo{
		Provider: "openai", Model: "gpt-image-2", StatusCode: 429, Header: h,
		Type: "requests", Code: "rate_limit_exceeded", Param: "", Message: "  slow down  ", Now: now,
	})

	assert.Equal(t, "openai", e.Provider)
	assert.Equal(t, "gpt-image-2", e.Model)
	assert.Equal(t, 429, e.StatusCode)
	assert.Equal(t, "rate_limit_exceeded", e.Code)
	assert.Equal(t, "requests", e.Type)
	assert.Equal(t, "slow down", e.Message)
	assert.Equal(t, "req_abc", e.RequestID)
	assert.Equal(t, 7*time.Second, e.RetryAfter)
	require.NotNil(t, e.ShouldRetry)
	assert.True(t, *e.ShouldRetry)
	assert.Equal(t, "imagegen: openai: rate limited (429 rate_limit_exceeded): slow down [request req_abc] (retry after 7s)", e.Error())
}

func TestNewAPIErrorResetHeaderAsWait(t *testing.T) {
	h := http.Header{}
	h.Set("X-Ratelimit-Remaining-Requests", "0")
	h.Set("X-Ratelimit-Reset-Requests", "12s")
	h.Set("X-Ratelimit-Remaining-Tokens", "0")
	h.Set("X-Ratelimit-Reset-Tokens", "3s")

	e := imagegen.NewAPIError(imagegen.APIErrorInfo{StatusCode: 429, Code: "rate_limit_exceeded", Header: h})

	assert.Equal(t, 12*time.Second, e.RetryAfter, "the longest reset of a spent window")
}

func TestNewTransportErrorClass(t *testing.T) {
	refused := &url.Error{Op: "Post", URL: "http://127.0.0.1:1", Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}
	tests := []struct {
		name string
		err  error
		sent bool
		want imagegen.Class
	}{
		{"canceled", context.Canceled, true, imagegen.ClassCanceled},
		{"deadline", context.DeadlineExceeded, true, imagegen.ClassTimeout},
		{"refused", refused, false, imagegen.ClassNetwork},
		{"not sent", errors.New("tls handshake failed"), false, imagegen.ClassNetwork},
		{"eof after send", &url.Error{Op: "Post", Err: io.EOF}, true, imagegen.ClassOutcomeUnknown},
		{"reset after send", fmt.Errorf("read: %w", syscall.ECONNRESET), true, imagegen.ClassOutcomeUnknown},
		{"unexpected eof", io.ErrUnexpectedEOF, true, imagegen.ClassOutcomeUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := imagegen.NewTransportError("p", "m", tt.err, tt.sent)
			assert.Equal(t, tt.want, e.Class)
			assert.ErrorIs(t, e, tt.err)
		})
	}
}

func TestErrorNeverContainsKey(t *testing.T) {
	const key = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
	e := imagegen.NewAPIError(imagegen.APIErrorInfo{
		Provider: "openai", StatusCode: 401, Code: "invalid_api_key",
		Message: "Incorrect API key provided: " + key + ". You can find your API key at https://platform.openai.com/account/api-keys.",
	})
	masked := imagegen.NewAPIError(imagegen.APIErrorInfo{
		StatusCode: 401, Message: "Incorrect API key provided: sk-abc***********************xyz.",
	})
	wrapped := imagegen.NewTransportError("p", "m", errors.New("Authorization: Bearer "+key+" rejected"), true)
	// A gateway that echoes the request's Authorization header in the
	// fields of its error body.
	echoed := imagegen.NewAPIError(imagegen.APIErrorInfo{
		StatusCode: 502, Type: "Bearer " + key, Code: "Bearer " + key, Param: key, Message: "bad gateway",
	})

	var logs strings.Builder
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	logger.Info("failed", slog.Any("error", e), slog.Any("masked", masked), slog.Any("wrapped", wrapped), slog.Any("echoed", echoed))

	for _, text := range []string{e.Error(), masked.Error(), wrapped.Error(), echoed.Error(), echoed.Type, echoed.Code, echoed.Param, logs.String()} {
		assert.NotContains(t, text, "AbCdEfGh")
		assert.NotContains(t, text, "sk-abc")
		assert.NotContains(t, text, "sk-proj")
	}
	assert.Contains(t, e.Error(), "[REDACTED]")
	assert.Equal(t, imagegen.ClassServer, echoed.Class)
	assert.Equal(t, "invalid_api_key", e.Code, "a code without a secret is kept")
}

func TestErrorNilSafe(t *testing.T) {
	var e *imagegen.Error
	assert.Equal(t, "imagegen: <nil error>", e.Error())
	assert.Nil(t, e.Unwrap())
	assert.False(t, e.Is(imagegen.ErrUnknown))
	assert.Equal(t, "<nil>", e.LogValue().String())

	var ae *imagegen.AttemptsError
	assert.Equal(t, "imagegen: <nil error>", ae.Error())
	assert.Nil(t, ae.Last())

	var ve *imagegen.ValidationError
	assert.Equal(t, "imagegen: <nil error>", ve.Error())
}

func TestErrorLogValue(t *testing.T) {
	e := &imagegen.Error{Provider: "openai", Model: "gpt-image-2", StatusCode: 503, Class: imagegen.ClassServer,
		Code: "server_error", RequestID: "req_1", RetryAfter: time.Second, Message: "overloaded"}

	var logs strings.Builder
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", slog.Any("err", e))

	for _, want := range []string{"err.provider=openai", "err.class=server_error", "err.model=gpt-image-2",
		"err.status=503", "err.code=server_error", "err.request_id=req_1", "err.retry_after=1s", "err.message=overloaded"} {
		assert.Contains(t, logs.String(), want)
	}
}

func TestClassString(t *testing.T) {
	names := map[string]bool{}
	for _, c := range imagegen.Classes() {
		s := c.String()
		assert.NotEmpty(t, s)
		assert.False(t, names[s], "duplicate name %s", s)
		names[s] = true
		assert.NotNil(t, c.Sentinel())
	}
	assert.Equal(t, "class(99)", imagegen.Class(99).String())
	assert.True(t, imagegen.ClassOutcomeUnknown.MayHaveBilled())
	assert.True(t, imagegen.ClassTimeout.MayHaveBilled())
	assert.False(t, imagegen.ClassServer.MayHaveBilled())
}
