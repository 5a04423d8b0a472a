package openaix

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagegen-go/imagegen"
)

func convert(t *testing.T, ctx context.Context, err error, sent bool) *imagegen.Error {
	t.Helper()
	var e *imagegen.Error
	require.ErrorAs(t, ConvertError(ctx, "gw", "m", err, sent, time.Now()), &e)
	assert.Equal(t, "gw", e.Provider)
	assert.Equal(t, "m", e.Model)
	return e
}

func TestConvertErrorAPIError(t *testing.T) {
	apiErr := &openai.Error{
		StatusCode: http.StatusTooManyRequests,
		Code:       "rate_limit_exceeded",
		Type:       "requests",
		Message:    "slow down",
		Response:   &http.Response{Header: http.Header{"Retry-After": {"3"}, "X-Request-Id": {"req_1"}}},
	}
	e := convert(t, t.Context(), apiErr, true)
	assert.Equal(t, imagegen.ClassRateLimited, e.Class)
	assert.Equal(t, 3*time.Second, e.RetryAfter)
	assert.Equal(t, "req_1", e.RequestID)
	assert.Equal(t, "rate_limit_exceeded", e.Code)
	assert.Equal(t, "requests", e.Type)
}

func TestConvertErrorWithoutBody(t *testing.T) {
	e := convert(t, t.Context(), &openai.Error{StatusCode: http.StatusBadGateway}, true)
	assert.Equal(t, imagegen.ClassServer, e.Class)
	assert.Equal(t, "the service returned Bad Gateway without an OpenAI error body", e.Message)
}

func TestConvertErrorTransport(t *testing.T) {
	urlErr := &url.Error{Op: "Post", URL: "https://gw.example/v1/chat/completions", Err: io.ErrUnexpectedEOF}
	assert.Equal(t, imagegen.ClassOutcomeUnknown, convert(t, t.Context(), urlErr, true).Class)
	assert.Equal(t, imagegen.ClassNetwork, convert(t, t.Context(), urlErr, false).Class)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	e := convert(t, ctx, urlErr, true)
	assert.Equal(t, imagegen.ClassCanceled, e.Class)
	assert.ErrorIs(t, e, context.Canceled)
	assert.ErrorIs(t, e, io.ErrUnexpectedEOF)
}

func TestConvertErrorConfiguration(t *testing.T) {
	e := convert(t, t.Context(), errors.New("apiVersion is an empty string"), false)
	assert.Equal(t, imagegen.ClassUnknown, e.Class)
}

func TestTraceSent(t *testing.T) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer server.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedURL := "http://" + ln.Addr().String() + "/"
	require.NoError(t, ln.Close())

	tests := []struct {
		name     string
		url      string
		wantSent bool
	}{
		{"request written", server.URL, true},
		{"connection refused", closedURL, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, sent := TraceSent(t.Context())
			assert.False(t, sent.Load())
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, tt.url, nil)
			require.NoError(t, err)
			resp, err := server.Client().Do(req)
			if err == nil {
				_ = resp.Body.Close()
			}
			assert.Equal(t, tt.wantSent, sent.Load())
		})
	}
}

func TestNewFetchDefaults(t *testing.T) {
	f, err := NewFetch("pkg", Fetch{}, 10, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if f.HTTPClient == nil || f.DownloadClient == nil || f.HTTPClient == f.DownloadClient {
		t.Fatalf("want two distinct clients, got %p and %p", f.HTTPClient, f.DownloadClient)
	}
	if f.MaxImageBytes != 10 || f.DownloadTimeout != time.Second {
		t.Fatalf("defaults not applied: %+v", f)
	}

	if _, err := NewFetch("pkg", Fetch{MaxImageBytes: -1}, 10, time.Second); err == nil || !strings.Contains(err.Error(), "pkg: invalid MaxImageBytes -1") {
		t.Fatalf("negative MaxImageBytes: got %v", err)
	}
	if _, err := NewFetch("pkg", Fetch{DownloadTimeout: -time.Second}, 10, time.Second); err == nil || !strings.Contains(err.Error(), "pkg: invalid DownloadTimeout -1s") {
		t.Fatalf("negative DownloadTimeout: got %v", err)
	}
}
