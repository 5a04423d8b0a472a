package azure

import (
	"bytes"
	"context"
	"encoding/base64"
	"image"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/provider"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testAPIVersion = "2025-04-01-preview"

func testPNG(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, image.NewGray(image.Rect(0, 0, 2, 2))))
	return buf.Bytes()
}

// recordedRequest is what the test resource saw of one request.
type recordedRequest struct {
	method     string
	path       string
	apiVersion string
	header     http.Header
	// model is the multipart form's model field, for edits.
	model string
}

// resource is a test Azure OpenAI resource on 127.0.0.1.
type resource struct {
	server *httptest.Server

	mu       sync.Mutex
	requests []recordedRequest
	status   int
	body     string
	header   map[string]string
}

func newResource(t *testing.T) *resource {
	t.Helper()
	r := &resource{status: http.StatusOK}
	r.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rec := recordedRequest{
			method:     req.Method,
			path:       req.URL.Path,
			apiVersion: req.URL.Query().Get("api-version"),
			header:     req.Header.Clone(),
		}
		if mediaType, params, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); mediaType == "multipart/form-data" {
			form, err := multipart.NewReader(req.Body, params["boundary"]).ReadForm(10 << 20)
			if err == nil {
				rec.model = form.Value["model"][0]
				_ = form.RemoveAll()
			}
		} else {
			_, _ = io.Copy(io.Discard, req.Body)
		}

		r.mu.Lock()
		r.requests = append(r.requests, rec)
		status, body, header := r.status, r.body, r.header
		r.mu.Unlock()

		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(r.server.Close)
	return r
}

func (r *resource) respond(status int, body string, header map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.body, r.header = status, body, header
}

func (r *resource) last(t *testing.T) recordedRequest {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.NotEmpty(t, r.requests)
	return r.requests[len(r.requests)-1]
}

func imagesBody(data []byte) string {
	return `{"created":1,"data":[{"b64_json":"` + base64.StdEncoding.EncodeToString(data) + `"}],"size":"1024x1024","quality":"low"}`
}

func TestGenerateUsesDeploymentPath(t *testing.T) {
	pngData := testPNG(t)
	r := newResource(t)
	r.respond(http.StatusOK, imagesBody(pngData), map[string]string{"X-Request-Id": "req_az"})

	p, err := New(Options{
		Endpoint:   r.server.URL,
		APIVersion: testAPIVersion,
		APIKey:     "azure-key-0123456789",
		Header:     http.Header{"X-Team": {"imaging"}},
		AllowHTTP:  true,
	})
	require.NoError(t, err)
	assert.Equal(t, "azure", p.Name())
	assert.False(t, p.EnforcesRetirement(), "Azure deployments may still serve retired models")

	resp, err := p.Generate(t.Context(), &provider.Request{Prompt: "a red fox", Model: "image-deploy", Quality: "low"})
	require.NoError(t, err)
	require.Len(t, resp.Images, 1)
	assert.Equal(t, pngData, resp.Images[0].Data)
	assert.Equal(t, "req_az", resp.RequestID)

	got := r.last(t)
	assert.Equal(t, http.MethodPost, got.method)
	assert.Equal(t, "/openai/deployments/image-deploy/images/generations", got.path)
	assert.Equal(t, testAPIVersion, got.apiVersion)
	assert.Equal(t, "azure-key-0123456789", got.header.Get("Api-Key"))
	assert.Empty(t, got.header.Get("Authorization"), "Azure keys go in Api-Key, not Authorization")
	assert.Equal(t, "imaging", got.header.Get("X-Team"))
}

func TestGenerateDefaultDeployment(t *testing.T) {
	r := newResource(t)
	r.respond(http.StatusOK, imagesBody(testPNG(t)), nil)
	p, err := New(Options{
		Name:       "azure-eastus",
		Endpoint:   r.server.URL,
		APIVersion: testAPIVersion,
		APIKey:     "azure-key-0123456789",
		Deployment: "fallback-deploy",
		AllowHTTP:  true,
	})
	require.NoError(t, err)
	assert.Equal(t, "azure-eastus", p.Name())

	_, err = p.Generate(t.Context(), &provider.Request{Prompt: "a red fox"})
	require.NoError(t, err)
	assert.Equal(t, "/openai/deployments/fallback-deploy/images/generations", r.last(t).path)
}

func TestEditUsesDeploymentPath(t *testing.T) {
	pngData := testPNG(t)
	r := newResource(t)
	r.respond(http.StatusOK, imagesBody(pngData), nil)
	p, err := New(Options{Endpoint: r.server.URL, APIVersion: testAPIVersion, APIKey: "azure-key-0123456789", AllowHTTP: true})
	require.NoError(t, err)

	resp, err := p.Edit(t.Context(), &provider.EditRequest{
		Request: provider.Request{Prompt: "add a hat", Model: "edit-deploy"},
		Images:  []provider.File{{Name: "fox.png", MediaType: "image/png", Data: pngData}},
	})
	require.NoError(t, err)
	require.Len(t, resp.Images, 1)

	got := r.last(t)
	assert.Equal(t, "/openai/deployments/edit-deploy/images/edits", got.path)
	assert.Equal(t, testAPIVersion, got.apiVersion)
	assert.Equal(t, "edit-deploy", got.model)
	assert.Equal(t, "azure-key-0123456789", got.header.Get("Api-Key"))
}

// staticCredential is an azcore.TokenCredential that returns a fixed token.
type staticCredential struct{ token string }

func (c staticCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: c.token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func TestGenerateWithTokenCredential(t *testing.T) {
	r := newResource(t)
	r.respond(http.StatusOK, imagesBody(testPNG(t)), nil)
	p, err := New(Options{
		Endpoint:        r.server.URL,
		APIVersion:      testAPIVersion,
		TokenCredential: staticCredential{token: "entra-token"},
		AllowHTTP:       true,
	})
	require.NoError(t, err)

	_, err = p.Generate(t.Context(), &provider.Request{Prompt: "a red fox", Model: "image-deploy"})
	require.NoError(t, err)
	got := r.last(t)
	assert.Equal(t, "Bearer entra-token", got.header.Get("Authorization"))
	assert.Empty(t, got.header.Get("Api-Key"))
}

func TestGenerateAzureErrors(t *testing.T) {
	r := newResource(t)
	p, err := New(Options{Endpoint: r.server.URL, APIVersion: testAPIVersion, APIKey: "azure-key-0123456789", AllowHTTP: true})
	require.NoError(t, err)

	tests := []struct {
		name       string
		status     int
		body       string
		header     map[string]string
		class      imagegen.Class
		code       string
		retryAfter time.Duration
	}{
		{
			name:   "numeric code",
			status: http.StatusTooManyRequests,
			body: `{"error":{"code":429,"message":"Requests to the Images_Generations API under Azure OpenAI API version ` +
				testAPIVersion + ` have exceeded call rate limit of your current pricing tier."}}`,
			header: map[string]string{"Retry-After": "7"},
			class:  imagegen.ClassRateLimited, code: "429", retryAfter: 7 * time.Second,
		},
		{
			name:   "numeric server code",
			status: http.StatusInternalServerError,
			body:   `{"error":{"code":500,"message":"Internal server error"}}`,
			class:  imagegen.ClassServer, code: "500",
		},
		{
			name:   "retry after milliseconds",
			status: http.StatusTooManyRequests,
			body:   `{"error":{"code":"429","message":"Rate limit is exceeded."}}`,
			header: map[string]string{"X-Ms-Retry-After-Ms": "1500"},
			class:  imagegen.ClassRateLimited, code: "429", retryAfter: 1500 * time.Millisecond,
		},
		{
			name:   "deployment not found",
			status: http.StatusNotFound,
			body:   `{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}`,
			class:  imagegen.ClassNotFound, code: "DeploymentNotFound",
		},
		{
			name:   "content filter",
			status: http.StatusBadRequest,
			body: `{"error":{"code":"content_policy_violation","message":"Your request was rejected as a result of our safety system.",` +
				`"param":"prompt","type":null,"inner_error":{"code":"ResponsibleAIPolicyViolation"}}}`,
			class: imagegen.ClassContentRejected, code: "content_policy_violation",
		},
		{
			name:   "bad key",
			status: http.StatusUnauthorized,
			body:   `{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint."}}`,
			class:  imagegen.ClassAuthentication, code: "401",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.respond(tt.status, tt.body, tt.header)
			_, err := p.Generate(t.Context(), &provider.Request{Prompt: "x", Model: "image-deploy"})
			var e *imagegen.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tt.class, e.Class, "error: %v", err)
			assert.ErrorIs(t, err, tt.class.Sentinel())
			assert.Equal(t, tt.status, e.StatusCode)
			assert.Equal(t, tt.code, e.Code)
			assert.Equal(t, tt.retryAfter, e.RetryAfter)
			assert.Equal(t, "azure", e.Provider)
			assert.Equal(t, "image-deploy", e.Model)
			assert.NotEmpty(t, e.Message)
		})
	}
}

func TestNewValidatesOptions(t *testing.T) {
	valid := Options{Endpoint: "https://res.openai.azure.com", APIVersion: testAPIVersion, APIKey: "k"}
	tests := []struct {
		name    string
		change  func(*Options)
		message string
	}{
		{"missing endpoint", func(o *Options) { o.Endpoint = "" }, "invalid Endpoint"},
		{"relative endpoint", func(o *Options) { o.Endpoint = "res.openai.azure.com" }, "invalid Endpoint"},
		{"plain http", func(o *Options) { o.Endpoint = "http://res.openai.azure.com" }, "plain http would send the credential unencrypted"},
		{"http to remote host", func(o *Options) { o.Endpoint = "http://res.openai.azure.com"; o.AllowHTTP = true }, "only localhost and loopback"},
		{"missing API version", func(o *Options) { o.APIVersion = " " }, "missing APIVersion"},
		{"missing credential", func(o *Options) { o.APIKey = "" }, "missing credential"},
		{"two credentials", func(o *Options) { o.TokenCredential = staticCredential{} }, "both APIKey and TokenCredential"},
		{"negative max bytes", func(o *Options) { o.MaxImageBytes = -1 }, "invalid MaxImageBytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := valid
			tt.change(&opts)
			p, err := New(opts)
			assert.Nil(t, p)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.message)
		})
	}

	for _, endpoint := range []string{"http://localhost:8080", "http://127.0.0.1:9", "http://[::1]:9"} {
		opts := valid
		opts.Endpoint = endpoint
		opts.AllowHTTP = true
		_, err := New(opts)
		assert.NoError(t, err, endpoint)
	}
}

func TestHexKeyNeverInErrors(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"code":"401","message":"Access denied for key ` + r.Header.Get("Api-Key") + `"}}`))
	}))
	defer srv.Close()
	p, err := New(Options{Endpoint: srv.URL, APIVersion: "2025-04-01-preview", APIKey: key, Deployment: "img", AllowHTTP: true})
	require.NoError(t, err)

	_, err = p.Generate(t.Context(), &provider.Request{Prompt: "x"})

	require.Error(t, err)
	assert.NotContains(t, err.Error(), key)
	assert.Contains(t, err.Error(), "[REDACTED]")
}
