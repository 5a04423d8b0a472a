package imagegentest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server is an image service on 127.0.0.1 that speaks OpenAI's wire format,
// for tests of code that calls OpenAI's image API. Create it with NewServer
// and point the client at URL, for example with openai-go's
// option.WithBaseURL(s.URL).
//
// It serves:
//
//   - POST /v1/images/generations: JSON body, as OpenAI.
//   - POST /v1/images/edits: multipart body with image or image[] file parts
//     and an optional mask.
//   - The same two under /openai/deployments/{deployment}/images/, as Azure
//     OpenAI routes them; the deployment stands for the model.
//   - GET /files/{id}: images of responses that carry URLs (see
//     WithURLResponses).
//
// Normal responses carry real PNG or JPEG images of the requested size, whose
// bytes depend only on the prompt, model, size, format and index, and a usage
// block computed with OutputTokens, TextTokens and ImageTokens. Requests are
// validated like OpenAI validates them, and rejected with OpenAI's error body.
//
// Tests script failures with Enqueue and SetHandler, and read what the
// Server received with Requests and Stats. All methods are safe for
// concurrent use.
type Server struct {
	// URL is the API base URL, of the form http://127.0.0.1:port/v1, without
	// a trailing slash. It is empty until Start.
	URL string

	srv       *httptest.Server
	cfg       serverConfig
	images    imageCache
	closed    chan struct{} // closed by Close, to end delays
	closeOnce sync.Once

	mu        sync.Mutex
	queue     []Response
	handler   HandlerFunc
	requests  []RecordedRequest
	stats     Stats
	quota     *quotaState
	files     map[string]storedFile
	fileOrder []string // file ids in insertion order, for eviction
}

// HandlerFunc decides the response to a request that no queued Response
// takes. It returns nil for a normal response. It runs on the Server's
// request goroutine, concurrently with other requests, and must not modify
// *r.
type HandlerFunc func(r *RecordedRequest) *Response

// RecordedRequest is a request as the Server received it.
type RecordedRequest struct {
	// Method and Path are the request's method and URL path, such as
	// "/v1/images/generations". Query holds the URL's query parameters.
	Method string
	Path   string
	Query  url.Values
	// Header is a copy of the request headers, including Authorization.
	Header http.Header
	// Body holds the decoded JSON body, whose numbers are float64, or the
	// multipart value fields as strings. A field sent twice keeps its last
	// value. Nil when the body was empty or could not be decoded.
	Body map[string]any
	// Files holds the multipart file parts in the order they were sent.
	Files []RecordedFile
	// Time is when the request arrived, by the Server's clock.
	Time time.Time
	// RequestID is the x-request-id header of the Server's response.
	RequestID string
}

// RecordedFile is one file part of a multipart request.
type RecordedFile struct {
	// Field is the form field name, such as "image", "image[]" or "mask".
	Field       string
	Filename    string
	ContentType string
	Data        []byte
}

// Option configures a Server.
type Option func(*serverConfig)

type serverConfig struct {
	urlResponses bool
	quota        Quota
	quotaSet     bool
	clock        func() time.Time
	apiKey       string
	handler      HandlerFunc
}

// WithURLResponses makes the Server respond with data[].url instead of
// data[].b64_json for every model, as some OpenAI-compatible gateways and
// DALL·E do. The URLs point at GET /files/{id} on the same Server, which
// serves the image with its content type. The Server keeps the last 1024
// such images; older URLs return 404, like expired ones.
func WithURLResponses() Option {
	return func(c *serverConfig) { c.urlResponses = true }
}

// WithQuota makes the Server enforce q; see Quota for the semantics.
func WithQuota(q Quota) Option {
	return func(c *serverConfig) { c.quota, c.quotaSet = q, true }
}

// WithClock sets the clock that the Server reads for the quota, the
// "created" field and RecordedRequest.Time. Nil means time.Now. Delays
// always run on real timers.
func WithClock(now func() time.Time) Option {
	return func(c *serverConfig) { c.clock = now }
}

// WithAPIKey makes the Server reject, with a 401 invalid_api_key response,
// requests whose Authorization header is not "Bearer key" and whose Api-Key
// header (sent by Azure OpenAI clients) is not key. Without it any key, or
// none, is accepted.
func WithAPIKey(key string) Option {
	return func(c *serverConfig) { c.apiKey = key }
}

// WithHandler sets the initial HandlerFunc; see Server.SetHandler.
func WithHandler(fn HandlerFunc) Option {
	return func(c *serverConfig) { c.handler = fn }
}

// NewServer starts and returns a Server. The caller must Close it, usually
// with t.Cleanup(s.Close).
func NewServer(opts ...Option) *Server {
	s := NewUnstartedServer(opts...)
	s.Start()
	return s
}

// NewUnstartedServer returns a Server that is not listening yet, so that the
// test can finish setting it up. Call Start, then Close.
func NewUnstartedServer(opts ...Option) *Server {
	var cfg serverConfig
	for _, opt := range opts {
		opt(&cfg)
	}
	if cfg.clock == nil {
		cfg.clock = time.Now
	}
	s := &Server{
		cfg:     cfg,
		closed:  make(chan struct{}),
		handler: cfg.handler,
		files:   make(map[string]storedFile),
	}
	if cfg.quotaSet {
		s.quota = newQuotaState(cfg.quota)
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	return s
}

// Start starts an unstarted Server and sets URL. Calling it twice does
// nothing.
func (s *Server) Start() {
	if s.URL != "" {
		return
	}
	s.srv.Start()
	s.URL = s.srv.URL + "/v1"
}

// Close ends pending delays, shuts the Server down and waits for its
// requests to finish. It may be called more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.srv.Close()
	})
}

// Client returns an *http.Client that talks to the Server. Its connections
// are closed by Close.
func (s *Server) Client() *http.Client {
	return s.srv.Client()
}

// RootURL returns the Server's URL without the /v1 path, the endpoint to
// give Azure OpenAI clients (openai-go's azure.WithEndpoint).
//
// NOTE: the Azure routes are tested with plain HTTP requests only, because
// openai-go's azure package needs a module this repository does not require.
func (s *Server) RootURL() string {
	return s.srv.URL
}

// Enqueue adds scripted responses. The next requests take them in order, one
// each, before any HandlerFunc; once they are used up, the Server responds
// normally again.
func (s *Server) Enqueue(resp ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, resp...)
}

// Pending returns the number of queued responses not used yet.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// SetHandler sets the HandlerFunc consulted for requests that no queued
// response takes. Nil removes it.
func (s *Server) SetHandler(fn HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handler = fn
}

// Requests returns the recorded requests in arrival order. The slice is a
// copy, but the requests share their maps and byte slices with the Server's
// record, so callers must not modify them.
func (s *Server) Requests() []RecordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RecordedRequest(nil), s.requests...)
}

// RequestCount returns the number of recorded requests.
func (s *Server) RequestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// Stats returns the Server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// serveHTTP records the request, picks its response and sends it.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/files/") {
		s.serveFile(w, r)
		return
	}

	route := routeOf(r.URL.Path)
	rec := RecordedRequest{
		Method:    r.Method,
		Path:      r.URL.Path,
		Query:     r.URL.Query(),
		Header:    r.Header.Clone(),
		Time:      s.cfg.clock(),
		RequestID: newRequestID(),
	}
	var parseErr *Response
	switch {
	case r.Method == http.MethodPost && route.op == opGenerate:
		rec.Body, parseErr = readJSONBody(w, r)
	case r.Method == http.MethodPost && route.op == opEdit:
		rec.Body, rec.Files, parseErr = readMultipartBody(w, r)
	default:
		_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, maxBodyBytes))
	}

	s.mu.Lock()
	s.requests = append(s.requests, rec)
	s.stats.Requests++
	var scripted *Response
	if len(s.queue) > 0 {
		next := s.queue[0]
		s.queue = s.queue[1:]
		scripted = &next
	}
	handler := s.handler
	s.mu.Unlock()

	if scripted == nil && handler != nil {
		scripted = handler(&rec)
	}

	a := exchange{w: w, r: r, rec: &rec, start: time.Now()}
	if scripted != nil {
		if !s.sleep(r, scripted.Delay) {
			s.count(func(st *Stats) { st.Abandoned++ })
			return
		}
		if scripted.Drop {
			s.drop(w)
			return
		}
		if scripted.Status != 0 || scripted.Body != "" || scripted.Error != nil {
			s.writeScripted(&a, scripted)
			return
		}
		a.extra = scripted.Header
	}

	switch {
	case route.op == opNone:
		s.writeError(&a, http.StatusNotFound, nil, &APIError{
			Message: "Invalid URL (" + r.Method + " " + r.URL.Path + ")",
			Type:    TypeInvalidRequest,
		})
	case r.Method != http.MethodPost:
		s.writeError(&a, http.StatusMethodNotAllowed, nil, &APIError{
			Message: "Invalid method for URL (" + r.Method + " " + r.URL.Path + ")",
			Type:    TypeInvalidRequest,
		})
	case !s.authorized(r):
		key := presentedKey(r)
		s.writeError(&a, http.StatusUnauthorized, nil, &APIError{
			Message: invalidKeyMessage(maskKey(key)),
			Type:    TypeInvalidRequest,
			Code:    CodeInvalidAPIKey,
		})
	case parseErr != nil:
		s.writeScripted(&a, parseErr)
	default:
		s.serveImages(&a, route)
	}
}

// exchange is one request and the state of its response.
type exchange struct {
	w     http.ResponseWriter
	r     *http.Request
	rec   *RecordedRequest
	start time.Time
	extra http.Header // added to a normal response by a scripted Response
}

// sleep waits d and reports whether the wait ran to its end. The wait ends
// early when the client goes away or the Server closes. It uses a timer, not
// time.Sleep, so that the wait can end early.
func (s *Server) sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.closed:
	}
	return false
}

// drop closes the connection without responding.
func (s *Server) drop(w http.ResponseWriter) {
	s.count(func(st *Stats) { st.Dropped++ })
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	// net/http closes the connection without logging for this value.
	panic(http.ErrAbortHandler)
}

func (s *Server) count(update func(*Stats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	update(&s.stats)
}

// writeScripted sends a scripted response that has a status, body or error.
func (s *Server) writeScripted(a *exchange, resp *Response) {
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	if resp.Body == "" && resp.Error != nil {
		s.writeError(a, status, resp.Header, resp.Error)
		return
	}
	s.write(a, status, resp.Header, []byte(resp.Body), 0)
}

// writeError sends OpenAI's error body.
func (s *Server) writeError(a *exchange, status int, h http.Header, e *APIError) {
	body, err := json.Marshal(errorEnvelope{Error: errorJSON{
		Message: e.Message,
		Type:    e.Type,
		Param:   nullable(e.Param),
		Code:    nullable(e.Code),
	}})
	if err != nil {
		// Strings always marshal; this branch is unreachable.
		body = []byte(`{"error":{"message":"imagegentest: encoding the error failed","type":"server_error","param":null,"code":null}}`)
	}
	s.write(a, status, h, body, 0)
}

// write sends a response with the common headers and counts it. images is
// the number of images in a normal successful response.
func (s *Server) write(a *exchange, status int, h http.Header, body []byte, images int) {
	out := a.w.Header()
	for _, src := range []http.Header{a.extra, h} {
		for k, v := range src {
			out[k] = append([]string(nil), v...)
		}
	}
	if out.Get("Content-Type") == "" {
		out.Set("Content-Type", "application/json")
	}
	if out.Get("X-Request-Id") == "" {
		out.Set("X-Request-Id", a.rec.RequestID)
	}
	out.Set("Openai-Version", "2020-10-01")
	out.Set("Openai-Processing-Ms", strconv.FormatInt(time.Since(a.start).Milliseconds(), 10))
	out.Set("Content-Length", strconv.Itoa(len(body)))

	s.count(func(st *Stats) {
		switch {
		case status >= 200 && status < 300:
			st.Succeeded++
			st.Images += images
		case status >= 400:
			st.Failed++
		}
		if status == http.StatusTooManyRequests {
			st.RateLimited++
		}
	})
	a.w.WriteHeader(status)
	_, _ = a.w.Write(body)
}

func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.apiKey == "" {
		return true
	}
	return r.Header.Get("Authorization") == "Bearer "+s.cfg.apiKey || r.Header.Get("Api-Key") == s.cfg.apiKey
}

// presentedKey returns the key a request carries, for the 401 message.
func presentedKey(r *http.Request) string {
	if k := r.Header.Get("Api-Key"); k != "" {
		return k
	}
	auth := r.Header.Get("Authorization")
	if len(auth) > len("Bearer ") && strings.EqualFold(auth[:len("Bearer ")], "Bearer ") {
		return auth[len("Bearer "):]
	}
	return auth
}

// maskKey hides all but the first 8 and the last 4 characters of key, in the
// style of OpenAI's 401 message. Keys of 12 characters or fewer are hidden
// entirely.
func maskKey(key string) string {
	if len(key) <= 12 {
		return strings.Repeat("*", len(key))
	}
	return key[:8] + strings.Repeat("*", len(key)-12) + key[len(key)-4:]
}

// storedFile is an image served at /files/{id}.
type storedFile struct {
	data        []byte
	contentType string
}

// maxStoredFiles bounds the images kept for URL responses.
const maxStoredFiles = 1024

// storeFile keeps data for GET /files/{id} and returns its absolute URL.
func (s *Server) storeFile(data []byte, format string) string {
	ext := ".png"
	if format == "jpeg" {
		ext = ".jpg"
	}
	id := "img-" + randomHex(12) + ext

	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.fileOrder) >= maxStoredFiles {
		delete(s.files, s.fileOrder[0])
		s.fileOrder = s.fileOrder[1:]
	}
	s.files[id] = storedFile{data: data, contentType: mediaTypeOf(format)}
	s.fileOrder = append(s.fileOrder, id)
	return s.srv.URL + "/files/" + id
}

func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/files/")
	s.mu.Lock()
	f, ok := s.files[id]
	if ok && r.Method == http.MethodGet {
		s.stats.Downloads++
	}
	s.mu.Unlock()

	w.Header().Set("X-Request-Id", newRequestID())
	switch {
	case r.Method != http.MethodGet:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	case !ok:
		http.Error(w, "file not found or expired", http.StatusNotFound)
	default:
		w.Header().Set("Content-Type", f.contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
		_, _ = w.Write(f.data)
	}
}

type errorEnvelope struct {
	Error errorJSON `json:"error"`
}

type errorJSON struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// newRequestID returns an id in OpenAI's x-request-id form, req_ and 32
// hex digits.
func newRequestID() string {
	return "req_" + randomHex(16)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // Since Go 1.24, crypto/rand.Read never returns an error.
	return hex.EncodeToString(b)
}
