package openaix

import (
	"fmt"
	"net/http"
	"time"

	"github.com/openai/openai-go/v3/option"
)

// Fetch holds how a provider reads images: the client that sends API
// requests, the separate client that downloads image URLs, and the limits.
type Fetch struct {
	HTTPClient      *http.Client
	DownloadClient  *http.Client
	MaxImageBytes   int64
	DownloadTimeout time.Duration
}

// NewFetch fills the zero fields of f with defaults: new http.Clients (the
// download client is never the API client, so credentials its transport
// adds stay with the API), and the given limits. It returns an error naming
// the field, prefixed with pkg, for a negative limit.
func NewFetch(pkg string, f Fetch, defaultMaxImageBytes int64, defaultDownloadTimeout time.Duration) (Fetch, error) {
	if f.MaxImageBytes < 0 {
		return Fetch{}, fmt.Errorf("%s: invalid MaxImageBytes %d: must be positive, or 0 for the default %d", pkg, f.MaxImageBytes, defaultMaxImageBytes)
	}
	if f.DownloadTimeout < 0 {
		return Fetch{}, fmt.Errorf("%s: invalid DownloadTimeout %v: must be positive, or 0 for the default %v", pkg, f.DownloadTimeout, defaultDownloadTimeout)
	}
	if f.HTTPClient == nil {
		f.HTTPClient = &http.Client{}
	}
	if f.DownloadClient == nil {
		f.DownloadClient = &http.Client{}
	}
	if f.MaxImageBytes == 0 {
		f.MaxImageBytes = defaultMaxImageBytes
	}
	if f.DownloadTimeout == 0 {
		f.DownloadTimeout = defaultDownloadTimeout
	}
	return f, nil
}

// RequestOptions returns the openai-go options of a provider: base URL, HTTP
// client, API key and extra headers, then extra, with the SDK's retries off
// because the imagegen Client owns retrying. Services built from these
// options read no environment variables, unlike openai.NewClient.
func RequestOptions(baseURL string, client *http.Client, apiKey string, header http.Header, extra ...option.RequestOption) []option.RequestOption {
	opts := []option.RequestOption{
		option.WithBaseURL(baseURL),
		option.WithHTTPClient(client),
	}
	if apiKey != "" {
		opts = append(opts, option.WithAPIKey(apiKey))
	}
	for key, values := range header {
		for _, v := range values {
			opts = append(opts, option.WithHeaderAdd(key, v))
		}
	}
	opts = append(opts, extra...)
	return append(opts, option.WithMaxRetries(0))
}
