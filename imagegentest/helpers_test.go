package imagegentest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"

	"github.com/imagegen-go/imagegen/imagegentest"
)

var requestIDPattern = regexp.MustCompile(`^req_[0-9a-f]{32}$`)

// newTestServer starts a Server that the test closes when it ends.
func newTestServer(t testing.TB, opts ...imagegentest.Option) *imagegentest.Server {
	t.Helper()
	srv := imagegentest.NewServer(opts...)
	t.Cleanup(srv.Close)
	return srv
}

// newOpenAIClient returns an openai-go client for srv that does not retry.
func newOpenAIClient(srv *imagegentest.Server, opts ...option.RequestOption) openai.Client {
	base := []option.RequestOption{
		option.WithBaseURL(srv.URL),
		option.WithAPIKey("test"),
		option.WithMaxRetries(0),
		option.WithHTTPClient(srv.Client()),
	}
	return openai.NewClient(append(base, opts...)...)
}

// decodeB64 decodes a b64_json image and returns its format and size.
func decodeB64(t *testing.T, b64 string) (data []byte, format string, bounds image.Rectangle) {
	t.Helper()
	data, err := base64.StdEncoding.DecodeString(b64)
	require.NoError(t, err)
	img, format, err := image.Decode(bytes.NewReader(data))
	require.NoError(t, err)
	return data, format, img.Bounds()
}

// postRaw sends body to path on srv and returns the status, headers and body.
func postRaw(t *testing.T, srv *imagegentest.Server, path, contentType, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(data)
}

// testClock is a settable clock, safe for concurrent use.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
