package httpx

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadLimited(t *testing.T) {
	data, err := ReadLimited(strings.NewReader("hello"), 5, -1)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(data))

	_, err = ReadLimited(strings.NewReader("hello!"), 5, -1)
	assert.ErrorIs(t, err, ErrTooLarge)

	_, err = ReadLimited(strings.NewReader("hi"), 5, 6)
	assert.ErrorIs(t, err, ErrTooLarge, "a Content-Length over the limit fails before reading")
}

func TestDownload(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "image/*", r.Header.Get("Accept"))
		switch r.URL.Path {
		case "/image.png":
			w.Header().Set("Content-Type", "image/png; charset=binary")
			_, _ = w.Write([]byte("\x89PNG data"))
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	data, mediaType, err := Download(t.Context(), srv.Client(), srv.URL+"/image.png", 100, time.Second)
	require.NoError(t, err)
	assert.Equal(t, "\x89PNG data", string(data))
	assert.Equal(t, "image/png", mediaType)

	_, _, err = Download(t.Context(), srv.Client(), srv.URL+"/image.png", 4, time.Second)
	assert.ErrorIs(t, err, ErrTooLarge)

	_, _, err = Download(t.Context(), srv.Client(), srv.URL+"/missing", 100, time.Second)
	assert.ErrorContains(t, err, "status 404")

	_, _, err = Download(t.Context(), srv.Client(), srv.URL+"/slow", 100, 20*time.Millisecond)
	assert.ErrorContains(t, err, "downloading the image failed")

	for _, bad := range []string{"ftp://example.com/a.png", "file:///etc/passwd", "/relative.png", "::"} {
		_, _, err = Download(t.Context(), srv.Client(), bad, 100, time.Second)
		assert.ErrorContains(t, err, "only absolute http and https URLs", bad)
	}
}
