package httpx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"time"
)

// ErrTooLarge marks a response body or image over its size limit.
var ErrTooLarge = errors.New("over the size limit")

// ReadLimited reads body to the end into one buffer, or fails with an error
// matching ErrTooLarge once it has read more than limit bytes. sizeHint is
// the response's Content-Length, or -1 when unknown. It sizes the buffer, so
// that a large body is not copied while the buffer grows, and a hint over
// the limit fails at once.
func ReadLimited(body io.Reader, limit, sizeHint int64) ([]byte, error) {
	if sizeHint > limit {
		return nil, fmt.Errorf("body of %d bytes (Content-Length) is %w of %d bytes", sizeHint, ErrTooLarge, limit)
	}
	if sizeHint < 0 {
		sizeHint = 64 << 10
	}
	buf := bytes.NewBuffer(make([]byte, 0, sizeHint+bytes.MinRead))
	n, err := buf.ReadFrom(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("body %w of %d bytes", ErrTooLarge, limit)
	}
	return buf.Bytes(), nil
}

// Download fetches an http or https URL with client, within timeout and
// maxBytes, and returns the body and its declared media type. It adds no
// credentials, and client must add none either: image URLs come from a
// service's output and may point anywhere.
func Download(ctx context.Context, client *http.Client, rawURL string, maxBytes int64, timeout time.Duration) (data []byte, mediaType string, err error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, "", fmt.Errorf("invalid image URL %q: only absolute http and https URLs can be downloaded", rawURL)
	}

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, "", fmt.Errorf("invalid image URL: %w", err)
	}
	req.Header.Set("Accept", "image/*")
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("downloading the image failed: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, "", fmt.Errorf("downloading the image from %s failed with status %d", u.Host, resp.StatusCode)
	}

	data, err = ReadLimited(resp.Body, maxBytes, resp.ContentLength)
	if err != nil {
		return nil, "", fmt.Errorf("downloading the image from %s failed: %w", u.Host, err)
	}
	mediaType, _, _ = mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return data, mediaType, nil
}
