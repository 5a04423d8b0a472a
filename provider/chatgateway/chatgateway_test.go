package chatgateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/provider"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testPNG returns a small PNG image.
func testPNG(t testing.TB) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(1, 1, color.RGBA{R: 255, A: 255})
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.Bytes()
}

// testJPEG returns a small JPEG image.
func testJPEG(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 4, 4)), nil))
	return buf.Bytes()
}

func dataURL(mediaType string, data []byte) string {
	return "data:" + mediaType + ";base64," + base64.StdEncoding.EncodeToString(data)
}

// gateway is a test chat completions gateway on 127.0.0.1. It responds to
// POST /v1/chat/completions with reply and serves images under /files/.
type gateway struct {
	server *httptest.Server

	mu       sync.Mutex
	requests []map[string]any
	headers  []http.Header
	// downloads holds the headers of each request under /files/.
	downloads []http.Header
	// reply writes the chat completion response.
	reply func(w http.ResponseWriter, r *http.Request)
}

func newGateway(t *testing.T, png []byte) *gateway {
	t.Helper()
	g := &gateway{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		g.mu.Lock()
		g.requests = append(g.requests, body)
		g.headers = append(g.headers, r.Header.Clone())
		reply := g.reply
		g.mu.Unlock()
		reply(w, r)
	})
	mux.HandleFunc("GET /files/", func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.downloads = append(g.downloads, r.Header.Clone())
		g.mu.Unlock()
		switch r.URL.Path {
		case "/files/cat.png":
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write(png)
		case "/files/octet.png":
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(png)
		case "/files/big.png":
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write(append(png, make([]byte, 4096)...))
		case "/files/page.html":
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<!doctype html><html><body>hello</body></html>"))
		default:
			http.NotFound(w, r)
		}
	})
	g.server = httptest.NewServer(mux)
	t.Cleanup(g.server.Close)
	return g
}

// replyJSON makes the gateway respond with status and body.
func (g *gateway) replyJSON(status int, body string, header map[string]string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reply = func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// replyMessage makes the gateway respond 200 with one choice whose message
// is the given JSON object.
func (g *gateway) replyMessage(message string) {
	g.replyJSON(http.StatusOK, `{"id":"c1","object":"chat.completion","model":"gw-image-1","choices":[{"index":0,"finish_reason":"stop","message":`+message+`}]}`, nil)
}

func (g *gateway) url(path string) string { return g.server.URL + path }

func (g *gateway) lastRequest(t *testing.T) (map[string]any, http.Header) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	require.NotEmpty(t, g.requests)
	return g.requests[len(g.requests)-1], g.headers[len(g.headers)-1]
}

func newTestProvider(t *testing.T, g *gateway, opts Options) *Provider {
	t.Helper()
	if opts.BaseURL == "" {
		opts.BaseURL = g.url("/v1")
	}
	if opts.APIKey == "" {
		opts.APIKey = "sk-test-key-0123456789"
	}
	p, err := New(opts)
	require.NoError(t, err)
	return p
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestGenerateImageEncodings(t *testing.T) {
	pngData := testPNG(t)
	jpegData := testJPEG(t)
	g := newGateway(t, pngData)
	catURL := g.url("/files/cat.png")

	tests := []struct {
		name    string
		message string
		want    [][]byte
		types   []string
	}{
		{
			name:    "data URL",
			message: `{"role":"assistant","content":` + jsonString(dataURL("image/png", pngData)) + `}`,
			want:    [][]byte{pngData},
			types:   []string{"image/png"},
		},
		{
			name:    "markdown data URL",
			message: `{"role":"assistant","content":` + jsonString("Here it is:\n\n![a cat]("+dataURL("image/png", pngData)+")\n") + `}`,
			want:    [][]byte{pngData},
			types:   []string{"image/png"},
		},
		{
			name:    "markdown http URL",
			message: `{"role":"assistant","content":` + jsonString("![cat]("+catURL+` "title")`) + `}`,
			want:    [][]byte{pngData},
			types:   []string{"image/png"},
		},
		{
			name:    "bare URL",
			message: `{"role":"assistant","content":` + jsonString("Your image is ready: "+catURL+".") + `}`,
			want:    [][]byte{pngData},
			types:   []string{"image/png"},
		},
		{
			name: "content parts",
			message: `{"role":"assistant","content":[{"type":"text","text":"Done."},` +
				`{"type":"image_url","image_url":{"url":` + jsonString(dataURL("image/png", pngData)) + `}},` +
				`{"type":"image_url","image_url":{"url":` + jsonString(catURL) + `}}]}`,
			want:  [][]byte{pngData, pngData},
			types: []string{"image/png", "image/png"},
		},
		{
			name:    "image_url as string",
			message: `{"role":"assistant","content":[{"type":"image_url","image_url":` + jsonString(catURL) + `}]}`,
			want:    [][]byte{pngData},
			types:   []string{"image/png"},
		},
		{
			name: "images field",
			message: `{"role":"assistant","content":"Here you go.","images":[` +
				`{"type":"image_url","image_url":{"url":` + jsonString(dataURL("image/jpeg", jpegData)) + `}}]}`,
			want:  [][]byte{jpegData},
			types: []string{"image/jpeg"},
		},
		{
			name:    "media type sniffed",
			message: `{"role":"assistant","content":` + jsonString(dataURL("image/png", jpegData)) + `}`,
			want:    [][]byte{jpegData},
			types:   []string{"image/jpeg"},
		},
		{
			name:    "sniffed type beats octet-stream",
			message: `{"role":"assistant","content":` + jsonString("![]("+g.url("/files/octet.png")+")") + `}`,
			want:    [][]byte{pngData},
			types:   []string{"image/png"},
		},
		{
			name:    "declared type for unknown binary",
			message: `{"role":"assistant","content":` + jsonString(dataURL("image/avif", []byte{0x01, 0x02, 0x03, 0xff})) + `}`,
			want:    [][]byte{{0x01, 0x02, 0x03, 0xff}},
			types:   []string{"image/avif"},
		},
		{
			name:    "declared SVG",
			message: `{"role":"assistant","content":` + jsonString(dataURL("image/svg+xml", []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`))) + `}`,
			want:    [][]byte{[]byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`)},
			types:   []string{"image/svg+xml"},
		},
		{
			name:    "duplicate references read once",
			message: `{"role":"assistant","content":` + jsonString("![a]("+catURL+") and again ![b]("+catURL+")") + `}`,
			want:    [][]byte{pngData},
			types:   []string{"image/png"},
		},
		{
			name:    "markdown wins over links",
			message: `{"role":"assistant","content":` + jsonString("![img]("+catURL+")\nSource: "+g.url("/files/page.html")) + `}`,
			want:    [][]byte{pngData},
			types:   []string{"image/png"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g.replyMessage(tt.message)
			p := newTestProvider(t, g, Options{})
			resp, err := p.Generate(t.Context(), &provider.Request{Prompt: "a cat", Model: "gw-image-1"})
			require.NoError(t, err)
			require.Len(t, resp.Images, len(tt.want))
			for i := range tt.want {
				assert.Equal(t, tt.want[i], resp.Images[i].Data, "image %d", i)
				assert.Equal(t, tt.types[i], resp.Images[i].MediaType, "image %d", i)
			}
			assert.Equal(t, "gw-image-1", resp.Model)
		})
	}
}

func TestGenerateSeveralChoices(t *testing.T) {
	pngData := testPNG(t)
	jpegData := testJPEG(t)
	g := newGateway(t, pngData)
	g.replyJSON(http.StatusOK, `{"model":"gw","choices":[`+
		`{"index":0,"message":{"role":"assistant","content":`+jsonString(dataURL("image/png", pngData))+`}},`+
		`{"index":1,"message":{"role":"assistant","content":`+jsonString(dataURL("image/jpeg", jpegData))+`}}]}`, nil)
	p := newTestProvider(t, g, Options{})

	resp, err := p.Generate(t.Context(), &provider.Request{Prompt: "two cats", Model: "gw", N: 2})
	require.NoError(t, err)
	require.Len(t, resp.Images, 2)
	assert.Equal(t, pngData, resp.Images[0].Data)
	assert.Equal(t, jpegData, resp.Images[1].Data)

	body, _ := g.lastRequest(t)
	assert.Equal(t, 2.0, body["n"])
}

func TestGenerateRequestMapping(t *testing.T) {
	pngData := testPNG(t)
	g := newGateway(t, pngData)
	g.replyMessage(`{"role":"assistant","content":` + jsonString("![]("+g.url("/files/cat.png")+")") + `}`)
	p := newTestProvider(t, g, Options{
		APIKey:      "sk-gateway-secret-123456",
		Header:      http.Header{"X-Tenant": {"blue"}},
		ExtraFields: map[string]any{"modalities": []string{"image", "text"}, "seed": 1},
	})

	compression := 80
	resp, err := p.Generate(t.Context(), &provider.Request{
		Prompt:            "a lighthouse",
		Model:             "gw-image-1",
		Size:              "1024x1536",
		Quality:           "high",
		Background:        "transparent",
		OutputFormat:      "png",
		OutputCompression: &compression,
		Moderation:        "low",
		Style:             "vivid",
		SafetyIdentifier:  "user-hash-1",
		Extra:             map[string]any{"seed": 7},
	})
	require.NoError(t, err)

	body, header := g.lastRequest(t)
	assert.Equal(t, "gw-image-1", body["model"])
	assert.Equal(t, "user-hash-1", body["safety_identifier"])
	assert.Equal(t, []any{"image", "text"}, body["modalities"])
	assert.Equal(t, 7.0, body["seed"], "request Extra overrides provider ExtraFields")
	assert.NotContains(t, body, "n", "n is sent only above 1")
	assert.NotContains(t, body, "size")
	messages, ok := body["messages"].([]any)
	require.True(t, ok)
	require.Len(t, messages, 1)
	message := messages[0].(map[string]any)
	assert.Equal(t, "user", message["role"])
	assert.Equal(t, "a lighthouse\n\nImage requirements: size 1024x1536 pixels, quality high, transparent background, png format.", message["content"])

	assert.Equal(t, "Bearer sk-gateway-secret-123456", header.Get("Authorization"))
	assert.Equal(t, "blue", header.Get("X-Tenant"))

	assert.Equal(t, []string{
		`size "1024x1536" sent as a hint in the prompt: the chat completions endpoint has no size field, so the model may ignore it`,
		`quality "high" sent as a hint in the prompt: the chat completions endpoint has no quality field, so the model may ignore it`,
		`background "transparent" sent as a hint in the prompt: the chat completions endpoint has no background field, so the model may ignore it`,
		`output_format "png" sent as a hint in the prompt: the chat completions endpoint has no output_format field, so the model may ignore it`,
		`output_compression "80" dropped: the chat completions endpoint has no output_compression field`,
		`moderation "low" dropped: the chat completions endpoint has no moderation field`,
		`style "vivid" dropped: the chat completions endpoint has no style field`,
	}, resp.Warnings)

	g.mu.Lock()
	defer g.mu.Unlock()
	require.Len(t, g.downloads, 1)
	assert.Empty(t, g.downloads[0].Get("Authorization"), "downloads never carry the API key")
	assert.Empty(t, g.downloads[0].Get("X-Tenant"), "downloads never carry extra headers")
}

func TestGenerateNoPromptHints(t *testing.T) {
	g := newGateway(t, testPNG(t))
	g.replyMessage(`{"role":"assistant","content":` + jsonString(dataURL("image/png", testPNG(t))) + `}`)
	p := newTestProvider(t, g, Options{NoPromptHints: true})

	resp, err := p.Generate(t.Context(), &provider.Request{Prompt: "a lighthouse", Model: "m", Size: "1024x1024"})
	require.NoError(t, err)

	body, _ := g.lastRequest(t)
	message := body["messages"].([]any)[0].(map[string]any)
	assert.Equal(t, "a lighthouse", message["content"])
	assert.Equal(t, []string{`size "1024x1024" dropped: the chat completions endpoint has no size field`}, resp.Warnings)
}

func TestGenerateNoWarningsForPlainRequest(t *testing.T) {
	g := newGateway(t, testPNG(t))
	g.replyMessage(`{"role":"assistant","content":` + jsonString(dataURL("image/png", testPNG(t))) + `}`)
	p := newTestProvider(t, g, Options{Model: "default-model"})

	resp, err := p.Generate(t.Context(), &provider.Request{Prompt: "a lighthouse"})
	require.NoError(t, err)
	assert.Nil(t, resp.Warnings)

	body, _ := g.lastRequest(t)
	assert.Equal(t, "default-model", body["model"], "Options.Model fills an empty request model")
}

func TestGenerateResponseFields(t *testing.T) {
	g := newGateway(t, testPNG(t))
	g.replyJSON(http.StatusOK, `{"model":"gw-image-1-2026","choices":[{"index":0,"message":{"role":"assistant","content":`+
		jsonString(dataURL("image/png", testPNG(t)))+`}}],"usage":{"prompt_tokens":12,"completion_tokens":4160,"total_tokens":4172}}`,
		map[string]string{
			"X-Request-Id":                   "req_42",
			"X-Ratelimit-Limit-Requests":     "50",
			"X-Ratelimit-Remaining-Requests": "49",
			"X-Ratelimit-Reset-Requests":     "1.2s",
		})
	p := newTestProvider(t, g, Options{})

	resp, err := p.Generate(t.Context(), &provider.Request{Prompt: "x", Model: "gw-image-1"})
	require.NoError(t, err)
	assert.Equal(t, "gw-image-1-2026", resp.Model)
	assert.Equal(t, "req_42", resp.RequestID)
	assert.Equal(t, provider.Quota{Known: true, Limit: 50, Remaining: 49, Reset: 1200 * time.Millisecond}, resp.RateLimit.Requests)
	assert.Equal(t, &provider.Usage{InputTokens: 12, InputTextTokens: 12, OutputTokens: 4160, TotalTokens: 4172}, resp.Usage)
}

// requireImagegenError asserts that err is an *imagegen.Error of class.
func requireImagegenError(t *testing.T, err error, class imagegen.Class) *imagegen.Error {
	t.Helper()
	var e *imagegen.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, class, e.Class, "error: %v", err)
	assert.ErrorIs(t, err, class.Sentinel())
	return e
}

func TestGenerateWithoutImageFails(t *testing.T) {
	g := newGateway(t, testPNG(t))
	tests := []struct {
		name    string
		body    string
		class   imagegen.Class
		message string
	}{
		{
			name:    "text only",
			body:    `{"choices":[{"index":0,"message":{"role":"assistant","content":"I made a lovely picture for you!"}}]}`,
			class:   imagegen.ClassOutcomeUnknown,
			message: "the assistant message contains no image (32 characters of text",
		},
		{
			name:    "null content",
			body:    `{"choices":[{"index":0,"message":{"role":"assistant","content":null}}]}`,
			class:   imagegen.ClassOutcomeUnknown,
			message: "contains no image",
		},
		{
			name:    "no choices",
			body:    `{"choices":[]}`,
			class:   imagegen.ClassOutcomeUnknown,
			message: "no choices",
		},
		{
			name:    "refusal",
			body:    `{"choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help with that."}}]}`,
			class:   imagegen.ClassContentRejected,
			message: "refused",
		},
		{
			name:    "content filter",
			body:    `{"choices":[{"index":0,"finish_reason":"content_filter","message":{"role":"assistant","content":""}}]}`,
			class:   imagegen.ClassContentRejected,
			message: "refused",
		},
		{
			name:    "invalid JSON",
			body:    `{"choices":[`,
			class:   imagegen.ClassOutcomeUnknown,
			message: "response is not a valid chat completion",
		},
		{
			name:    "content of wrong type",
			body:    `{"choices":[{"index":0,"message":{"role":"assistant","content":42}}]}`,
			class:   imagegen.ClassOutcomeUnknown,
			message: "neither a string nor an array",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g.replyJSON(http.StatusOK, tt.body, map[string]string{"X-Request-Id": "req_7"})
			p := newTestProvider(t, g, Options{})
			resp, err := p.Generate(t.Context(), &provider.Request{Prompt: "x", Model: "m"})
			assert.Nil(t, resp)
			e := requireImagegenError(t, err, tt.class)
			assert.Equal(t, http.StatusOK, e.StatusCode)
			assert.Equal(t, "req_7", e.RequestID)
			assert.Contains(t, e.Message, tt.message)
		})
	}
}

func TestGenerateNonJSONAnswer(t *testing.T) {
	g := newGateway(t, testPNG(t))
	g.mu.Lock()
	g.reply = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html>login</html>")
	}
	g.mu.Unlock()
	p := newTestProvider(t, g, Options{})

	_, err := p.Generate(t.Context(), &provider.Request{Prompt: "x", Model: "m"})
	e := requireImagegenError(t, err, imagegen.ClassOutcomeUnknown)
	assert.Contains(t, e.Message, "text/html instead of JSON")
}

func TestGenerateBadImageReferences(t *testing.T) {
	pngData := testPNG(t)
	g := newGateway(t, pngData)
	tests := []struct {
		name    string
		content string
		opts    Options
		message string
	}{
		{"oversize download", "![](" + g.url("/files/big.png") + ")", Options{MaxImageBytes: 1024}, "over the size limit of 1024 bytes"},
		{"oversize data URL", dataURL("image/png", append(pngData, make([]byte, 4096)...)), Options{MaxImageBytes: 1024}, "over the size limit of 1024 bytes"},
		{"download not found", "![](" + g.url("/files/missing.png") + ")", Options{}, "failed with status 404"},
		{"download not an image", g.url("/files/page.html"), Options{}, "text/html; charset=utf-8, not an image"},
		{"data URL not an image", "data:image/png;base64," + base64.StdEncoding.EncodeToString([]byte("hello, world")), Options{}, "not an image"},
		{"data URL invalid base64", "![](data:image/png;base64,@@@@)", Options{}, "not valid base64"},
		{"data URL not base64", "![](data:image/svg+xml,%3Csvg%3E)", Options{}, "not base64-encoded"},
		{"ftp URL rejected", "![](ftp://127.0.0.1/cat.png)", Options{}, `scheme "ftp" rejected`},
		{"file URL rejected", "![](file:///etc/hostname)", Options{}, `scheme "file" rejected`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g.replyMessage(`{"role":"assistant","content":` + jsonString(tt.content) + `}`)
			p := newTestProvider(t, g, tt.opts)
			_, err := p.Generate(t.Context(), &provider.Request{Prompt: "x", Model: "m"})
			e := requireImagegenError(t, err, imagegen.ClassOutcomeUnknown)
			assert.Contains(t, e.Message, tt.message)
		})
	}

	t.Run("image_url part with file scheme", func(t *testing.T) {
		g.replyMessage(`{"role":"assistant","content":[{"type":"image_url","image_url":{"url":"file:///etc/passwd"}}]}`)
		p := newTestProvider(t, g, Options{})
		_, err := p.Generate(t.Context(), &provider.Request{Prompt: "x", Model: "m"})
		e := requireImagegenError(t, err, imagegen.ClassOutcomeUnknown)
		assert.Contains(t, e.Message, `scheme "file" rejected`)
	})
}

func TestGenerateErrorStatuses(t *testing.T) {
	g := newGateway(t, testPNG(t))
	tests := []struct {
		name       string
		status     int
		body       string
		header     map[string]string
		class      imagegen.Class
		code       string
		typ        string
		param      string
		retryAfter time.Duration
	}{
		{
			name:   "rate limited",
			status: http.StatusTooManyRequests,
			body:   `{"error":{"message":"Rate limit reached for images per minute","type":"requests","code":"rate_limit_exceeded","param":null}}`,
			header: map[string]string{"Retry-After": "2", "X-Request-Id": "req_rl"},
			class:  imagegen.ClassRateLimited, code: "rate_limit_exceeded", typ: "requests", retryAfter: 2 * time.Second,
		},
		{
			name:   "quota",
			status: http.StatusTooManyRequests,
			body:   `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}`,
			class:  imagegen.ClassQuotaExceeded, code: "insufficient_quota", typ: "insufficient_quota",
		},
		{
			name:   "bad key",
			status: http.StatusUnauthorized,
			body:   `{"error":{"message":"Incorrect API key provided: sk-abc***xyz","type":"invalid_request_error","code":"invalid_api_key"}}`,
			class:  imagegen.ClassAuthentication, code: "invalid_api_key", typ: "invalid_request_error",
		},
		{
			name:   "invalid parameter",
			status: http.StatusBadRequest,
			body:   `{"error":{"message":"Invalid value for n","type":"invalid_request_error","code":"invalid_value","param":"n"}}`,
			class:  imagegen.ClassInvalidRequest, code: "invalid_value", typ: "invalid_request_error", param: "n",
		},
		{
			name:   "numeric code",
			status: http.StatusTooManyRequests,
			body:   `{"error":{"message":"Requests to the gateway are throttled","code":429}}`,
			class:  imagegen.ClassRateLimited, code: "429",
		},
		{
			name:   "server error",
			status: http.StatusInternalServerError,
			body:   `{"error":{"message":"The server had an error","type":"server_error","code":null}}`,
			class:  imagegen.ClassServer, typ: "server_error",
		},
		{
			name:   "not found",
			status: http.StatusNotFound,
			body:   `{"error":{"message":"The model does not exist","type":"invalid_request_error","code":"model_not_found"}}`,
			class:  imagegen.ClassNotFound, code: "model_not_found", typ: "invalid_request_error",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g.replyJSON(tt.status, tt.body, tt.header)
			p := newTestProvider(t, g, Options{})
			_, err := p.Generate(t.Context(), &provider.Request{Prompt: "x", Model: "gw-image-1"})
			e := requireImagegenError(t, err, tt.class)
			assert.Equal(t, tt.status, e.StatusCode)
			assert.Equal(t, tt.code, e.Code)
			assert.Equal(t, tt.typ, e.Type)
			assert.Equal(t, tt.param, e.Param)
			assert.Equal(t, tt.retryAfter, e.RetryAfter)
			assert.Equal(t, "chatgateway", e.Provider)
			assert.Equal(t, "gw-image-1", e.Model)
			assert.NotEmpty(t, e.Message)
			assert.NotContains(t, err.Error(), "sk-abc***xyz", "keys echoed by the gateway are redacted")
			if id := tt.header["X-Request-Id"]; id != "" {
				assert.Equal(t, id, e.RequestID)
			}
		})
	}

	t.Run("status without error body", func(t *testing.T) {
		g.mu.Lock()
		g.reply = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "upstream unavailable")
		}
		g.mu.Unlock()
		p := newTestProvider(t, g, Options{})
		_, err := p.Generate(t.Context(), &provider.Request{Prompt: "x", Model: "m"})
		e := requireImagegenError(t, err, imagegen.ClassServer)
		assert.Equal(t, http.StatusServiceUnavailable, e.StatusCode)
	})
}

func TestGenerateTransportErrors(t *testing.T) {
	t.Run("connection refused is not sent", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())

		p, err := New(Options{BaseURL: "http://" + addr + "/v1", APIKey: "k"})
		require.NoError(t, err)
		_, err = p.Generate(t.Context(), &provider.Request{Prompt: "x", Model: "m"})
		requireImagegenError(t, err, imagegen.ClassNetwork)
	})

	t.Run("connection closed after sending", func(t *testing.T) {
		g := newGateway(t, testPNG(t))
		g.mu.Lock()
		g.reply = func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		}
		g.mu.Unlock()
		p := newTestProvider(t, g, Options{})
		_, err := p.Generate(t.Context(), &provider.Request{Prompt: "x", Model: "m"})
		e := requireImagegenError(t, err, imagegen.ClassOutcomeUnknown)
		assert.True(t, e.Class.MayHaveBilled())
	})

	t.Run("canceled context", func(t *testing.T) {
		g := newGateway(t, testPNG(t))
		g.replyMessage(`{"role":"assistant","content":"x"}`)
		p := newTestProvider(t, g, Options{})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := p.Generate(ctx, &provider.Request{Prompt: "x", Model: "m"})
		requireImagegenError(t, err, imagegen.ClassCanceled)
		assert.ErrorIs(t, err, context.Canceled)
	})
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestGenerateDownloadTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The transport responds to the chat request at once and holds the image
		// download until its context ends, so only DownloadTimeout ends it.
		transport := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Path == "/v1/chat/completions" {
				body := `{"choices":[{"index":0,"message":{"role":"assistant","content":"![](https://images.example/slow.png)"}}]}`
				return &http.Response{
					StatusCode: http.StatusOK,
					Header:     http.Header{"Content-Type": {"application/json"}},
					Body:       io.NopCloser(strings.NewReader(body)),
					Request:    r,
				}, nil
			}
			<-r.Context().Done()
			return nil, r.Context().Err()
		})
		p, err := New(Options{
			BaseURL:         "https://gateway.example/v1",
			APIKey:          "k",
			HTTPClient:      &http.Client{Transport: transport},
			DownloadClient:  &http.Client{Transport: transport},
			DownloadTimeout: 5 * time.Second,
		})
		require.NoError(t, err)

		start := time.Now()
		_, err = p.Generate(t.Context(), &provider.Request{Prompt: "x", Model: "m"})
		e := requireImagegenError(t, err, imagegen.ClassOutcomeUnknown)
		assert.Contains(t, e.Message, "downloading the image failed")
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 5*time.Second, time.Since(start))
	})
}

func TestNewValidatesOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		message string
	}{
		{"missing base URL", Options{}, "invalid BaseURL"},
		{"relative base URL", Options{BaseURL: "/v1"}, "invalid BaseURL"},
		{"ftp base URL", Options{BaseURL: "ftp://gateway.example/v1"}, "invalid BaseURL"},
		{"negative max bytes", Options{BaseURL: "https://gateway.example/v1", MaxImageBytes: -1}, "invalid MaxImageBytes -1"},
		{"negative timeout", Options{BaseURL: "https://gateway.example/v1", DownloadTimeout: -time.Second}, "invalid DownloadTimeout -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(tt.opts)
			assert.Nil(t, p)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "imagegen/chatgateway: "+tt.message)
		})
	}

	p, err := New(Options{BaseURL: "https://gateway.example/v1"})
	require.NoError(t, err)
	assert.Equal(t, "chatgateway", p.Name())
	assert.Equal(t, int64(DefaultMaxImageBytes), p.maxImageBytes)
	assert.Equal(t, DefaultDownloadTimeout, p.downloadTimeout)

	named, err := New(Options{BaseURL: "https://gateway.example/v1", Name: "gw-eu"})
	require.NoError(t, err)
	assert.Equal(t, "gw-eu", named.Name())
}

func TestGenerateRequiresModel(t *testing.T) {
	p, err := New(Options{BaseURL: "https://gateway.example/v1"})
	require.NoError(t, err)
	_, err = p.Generate(t.Context(), &provider.Request{Prompt: "x"})
	var v *imagegen.ValidationError
	require.ErrorAs(t, err, &v)
	assert.Equal(t, "model", v.Field)

	_, err = p.Generate(t.Context(), nil)
	require.Error(t, err)
}

func TestTextImageRefs(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{
		{"markdown with title", `![x](https://a.example/1.png "t")`, []string{"https://a.example/1.png"}},
		{"markdown angle brackets", `![x](<https://a.example/1.png>)`, []string{"https://a.example/1.png"}},
		{"two markdown images", `![](https://a.example/1.png) ![](https://a.example/2.png)`, []string{"https://a.example/1.png", "https://a.example/2.png"}},
		{"markdown link is bare URL", `[download](https://a.example/1.png)`, []string{"https://a.example/1.png"}},
		{"bare URL punctuation trimmed", `See https://a.example/1.png, or https://a.example/2.png!`, []string{"https://a.example/1.png", "https://a.example/2.png"}},
		{"data URL in text", `here: data:image/webp;base64,UklGRg== done`, []string{"data:image/webp;base64,UklGRg=="}},
		{"data URL beats bare URL", `data:image/png;base64,iVBO and https://a.example/x`, []string{"data:image/png;base64,iVBO"}},
		{"nothing", `no image here`, nil},
		{"non-http bare URL ignored", `ftp://a.example/1.png`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, textImageRefs(tt.text))
		})
	}
}

func TestImageURLUnmarshal(t *testing.T) {
	var parts []contentPart
	require.NoError(t, json.Unmarshal([]byte(`[{"image_url":{"url":"a"}},{"image_url":"b"},{"image_url":null},{"type":"text"}]`), &parts))
	require.Len(t, parts, 4)
	assert.Equal(t, imageURL("a"), parts[0].ImageURL)
	assert.Equal(t, imageURL("b"), parts[1].ImageURL)
	assert.Equal(t, imageURL(""), parts[2].ImageURL)
	assert.Equal(t, imageURL(""), parts[3].ImageURL)

	var bad contentPart
	assert.Error(t, json.Unmarshal([]byte(`{"image_url":42}`), &bad))
}
