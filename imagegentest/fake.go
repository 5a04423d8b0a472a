package imagegentest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/provider"
)

// FakeProvider is an in-memory provider.Provider and provider.Editor for
// unit tests of code that takes a Provider, such as an imagegen.Client. It
// makes no network calls.
//
// By default every call succeeds after no delay with req.N deterministic PNG
// or JPEG images, produced like the Server's, and a usage block computed with
// OutputTokens, TextTokens and ImageTokens. Tests script other outcomes with
// Enqueue, SetFunc and the With… options, and read what it received with
// Calls, Requests and EditRequests.
//
// Images are shared between calls: callers must not modify Image.Data. The
// success path allocates one block for the Response, so the fake adds little
// to benchmarks of its callers; WithTinyImages keeps image rendering out of
// them too.
//
// A FakeProvider is safe for concurrent use. Waits use timers and honour ctx,
// so it works inside testing/synctest bubbles.
type FakeProvider struct {
	name   string
	cfg    fakeConfig
	images imageCache
	calls  atomic.Int64

	mu       sync.Mutex
	queue    []FakeResult
	fn       FakeFunc
	requests []provider.Request
	edits    []provider.EditRequest
}

// FakeResult is a scripted outcome of one FakeProvider call.
//
// Delay, when positive, is waited first, in place of the WithFakeDelay
// delay. If ctx ends during the wait, the call returns ctx's error as an
// *imagegen.Error of class ClassCanceled or ClassTimeout. Then Err is
// returned when set, else Response when set, else the normal images.
type FakeResult struct {
	// Response is returned as is, so one Response must not be enqueued for
	// several calls that modify it.
	Response *provider.Response
	// Err is returned as is. Build provider-like errors with FakeError and
	// FakeResultFrom.
	Err error
	// Delay is the wait before the call returns.
	Delay time.Duration
}

// FakeCall describes one call, for a FakeFunc.
type FakeCall struct {
	// Number is the call's position, from 1, among all calls to the fake.
	Number int
	// Request is the request. For Edit calls it points into Edit.
	Request *provider.Request
	// Edit is the edit request, or nil for Generate calls.
	Edit *provider.EditRequest
}

// FakeFunc decides the outcome of a call that no queued FakeResult takes. It
// returns nil for the normal images. It may be called concurrently, without
// any lock held.
type FakeFunc func(ctx context.Context, call FakeCall) *FakeResult

// FakeOption configures a FakeProvider.
type FakeOption func(*fakeConfig)

type fakeConfig struct {
	fixed       *provider.Image
	delay       time.Duration
	noRecording bool
	fn          FakeFunc
	rateLimit   provider.RateLimit
}

// maxFakeRecorded bounds the requests a FakeProvider records, so that long
// benchmarks do not grow without limit. Calls still counts every call.
const maxFakeRecorded = 10_000

// WithTinyImages makes every image a 1x1 PNG (see TinyPNG) whatever the
// request's size and format, so that benchmarks measure the caller rather
// than image encoding. Responses still report the requested size.
func WithTinyImages() FakeOption {
	return WithFakeImage(TinyPNG(), "image/png")
}

// WithFakeImage makes every image data with the given media type, whatever
// the request's size and format. The fake keeps data and returns it to every
// caller; neither side may modify it.
func WithFakeImage(data []byte, mediaType string) FakeOption {
	return func(c *fakeConfig) { c.fixed = &provider.Image{Data: data, MediaType: mediaType} }
}

// WithFakeDelay makes every call wait d before returning, unless a
// FakeResult sets its own Delay. The wait honours ctx.
func WithFakeDelay(d time.Duration) FakeOption {
	return func(c *fakeConfig) { c.delay = d }
}

// WithFakeFunc sets the initial FakeFunc; see FakeProvider.SetFunc.
func WithFakeFunc(fn FakeFunc) FakeOption {
	return func(c *fakeConfig) { c.fn = fn }
}

// WithFakeRateLimit makes successful responses report rl, as a service
// reports its quota in x-ratelimit-* headers.
func WithFakeRateLimit(rl provider.RateLimit) FakeOption {
	return func(c *fakeConfig) { c.rateLimit = rl }
}

// WithoutRecording turns off Requests and EditRequests, for benchmarks.
func WithoutRecording() FakeOption {
	return func(c *fakeConfig) { c.noRecording = true }
}

// NewFakeProvider returns a FakeProvider whose Name is name.
func NewFakeProvider(name string, opts ...FakeOption) *FakeProvider {
	f := &FakeProvider{name: name}
	for _, opt := range opts {
		opt(&f.cfg)
	}
	f.fn = f.cfg.fn
	return f
}

// Name returns the name given to NewFakeProvider.
func (f *FakeProvider) Name() string { return f.name }

// Enqueue adds scripted outcomes. The next calls take them in order, one
// each, before any FakeFunc; once they are used up, calls succeed normally
// again. A call whose ctx is already done takes none.
func (f *FakeProvider) Enqueue(results ...FakeResult) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue = append(f.queue, results...)
}

// Pending returns the number of queued outcomes not used yet.
func (f *FakeProvider) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.queue)
}

// SetFunc sets the FakeFunc consulted for calls that no queued outcome takes.
// Nil removes it.
func (f *FakeProvider) SetFunc(fn FakeFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fn = fn
}

// Calls returns the number of Generate and Edit calls so far.
func (f *FakeProvider) Calls() int {
	return int(f.calls.Load())
}

// Requests returns copies of the requests of Generate and Edit calls, in
// call order: the first 10,000, unless WithoutRecording was given. The
// copies share Extra maps with the callers' requests.
func (f *FakeProvider) Requests() []provider.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]provider.Request(nil), f.requests...)
}

// EditRequests returns copies of the requests of Edit calls, in call order,
// with the same limits as Requests. The copies share their File data with
// the callers' requests.
func (f *FakeProvider) EditRequests() []provider.EditRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]provider.EditRequest(nil), f.edits...)
}

// Generate returns req.N images, or the scripted outcome of the call.
func (f *FakeProvider) Generate(ctx context.Context, req *provider.Request) (*provider.Response, error) {
	if req == nil {
		return nil, fmt.Errorf("imagegen: fake provider %q: Generate called with a nil request", f.name)
	}
	return f.call(ctx, req, nil)
}

// Edit returns req.N images, or the scripted outcome of the call. Input
// images must be PNG or JPEG data, or declare image/webp, and count towards
// the usage's input image tokens.
func (f *FakeProvider) Edit(ctx context.Context, req *provider.EditRequest) (*provider.Response, error) {
	if req == nil {
		return nil, fmt.Errorf("imagegen: fake provider %q: Edit called with a nil request", f.name)
	}
	return f.call(ctx, &req.Request, req)
}

func (f *FakeProvider) call(ctx context.Context, req *provider.Request, edit *provider.EditRequest) (*provider.Response, error) {
	number := f.calls.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, imagegen.NewTransportError(f.name, req.Model, err, false)
	}

	f.mu.Lock()
	if !f.cfg.noRecording && len(f.requests) < maxFakeRecorded {
		f.requests = append(f.requests, *req)
		if edit != nil {
			f.edits = append(f.edits, *edit)
		}
	}
	var scripted *FakeResult
	if len(f.queue) > 0 {
		next := f.queue[0]
		f.queue = f.queue[1:]
		scripted = &next
	}
	fn := f.fn
	f.mu.Unlock()

	if scripted == nil && fn != nil {
		scripted = fn(ctx, FakeCall{Number: int(number), Request: req, Edit: edit})
	}

	delay := f.cfg.delay
	if scripted != nil && scripted.Delay > 0 {
		delay = scripted.Delay
	}
	if err := waitContext(ctx, delay); err != nil {
		return nil, imagegen.NewTransportError(f.name, req.Model, err, true)
	}

	if scripted != nil {
		if scripted.Err != nil {
			return nil, scripted.Err
		}
		if scripted.Response != nil {
			return scripted.Response, nil
		}
	}
	return f.respond(req, edit, number)
}

// waitContext waits d or until ctx is done, and then returns ctx's error. It
// uses a timer so that testing/synctest bubbles advance it.
func waitContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fakeResponse holds a Response with its usage and first image, so that a
// call with N of 1 allocates once.
type fakeResponse struct {
	resp   provider.Response
	usage  provider.Usage
	images [1]provider.Image
}

// respond builds the normal successful response.
func (f *FakeProvider) respond(req *provider.Request, edit *provider.EditRequest, number int64) (*provider.Response, error) {
	n := max(req.N, 1)
	width, height, ok := parseImageSize(req.Size)
	if !ok {
		return nil, FakeError(http.StatusBadRequest, TypeInvalidRequest, CodeInvalidValue,
			fmt.Sprintf("Invalid value: '%s'. Supported values are 'auto' and WIDTHxHEIGHT with edges from 1 to %d pixels.", req.Size, MaxImageEdge),
			nil)
	}
	var imageTokens int64
	if edit != nil {
		var err error
		if imageTokens, err = editInputTokens(edit); err != nil {
			return nil, err
		}
	}

	format := DefaultOutputFormat
	if req.OutputFormat == "jpeg" {
		format = "jpeg"
	}
	background := "opaque"
	if req.Background == "transparent" {
		background = "transparent"
	}
	quality := req.Quality
	if quality == "" || quality == "auto" {
		quality = DefaultQuality
	}

	out := &fakeResponse{}
	images := out.images[:]
	if n > 1 {
		images = make([]provider.Image, n)
	}
	for i := range images {
		if f.cfg.fixed != nil {
			images[i] = *f.cfg.fixed
			continue
		}
		compression := 100
		if req.OutputCompression != nil {
			compression = min(max(*req.OutputCompression, 1), 100)
		}
		data, err := f.images.get(imageKey{
			prompt:      req.Prompt,
			model:       req.Model,
			width:       width,
			height:      height,
			format:      format,
			transparent: background == "transparent" && format == "png",
			compression: compression,
			index:       i,
		})
		if err != nil {
			return nil, &imagegen.Error{Provider: f.name, Model: req.Model, Class: imagegen.ClassServer, Err: err}
		}
		images[i] = provider.Image{Data: data, MediaType: mediaTypeOf(format)}
	}

	text := TextTokens(req.Prompt)
	output := int64(n) * OutputTokens(quality, width, height)
	out.usage = provider.Usage{
		InputTokens:      text + imageTokens,
		InputTextTokens:  text,
		InputImageTokens: imageTokens,
		OutputTokens:     output,
		TotalTokens:      text + imageTokens + output,
	}
	out.resp = provider.Response{
		Images:       images,
		Usage:        &out.usage,
		Model:        req.Model,
		RequestID:    fakeRequestID(number),
		Size:         sizeString(req.Size, width, height),
		Quality:      quality,
		Background:   background,
		OutputFormat: format,
		RateLimit:    f.cfg.rateLimit,
	}
	return &out.resp, nil
}

// fakeRequestID returns "req_fake_" and the call number, with one
// allocation.
func fakeRequestID(number int64) string {
	var buf [32]byte
	b := append(buf[:0], "req_fake_"...)
	return string(strconv.AppendInt(b, number, 10))
}

// sizeString formats a parsed size, reusing the request's string when it
// already has the canonical form.
func sizeString(requested string, width, height int) string {
	if requested == "" || requested == "auto" {
		return DefaultSize
	}
	if w, h, ok := strings.Cut(requested, "x"); ok && w == strconv.Itoa(width) && h == strconv.Itoa(height) {
		return requested
	}
	return strconv.Itoa(width) + "x" + strconv.Itoa(height)
}

// editInputTokens validates an edit's input images and mask with the
// Server's rules and returns their estimated input tokens.
func editInputTokens(edit *provider.EditRequest) (int64, error) {
	files := make([]RecordedFile, 0, len(edit.Images)+1)
	for _, img := range edit.Images {
		files = append(files, RecordedFile{Field: "image[]", Filename: img.Name, ContentType: img.MediaType, Data: img.Data})
	}
	if edit.Mask != nil {
		files = append(files, RecordedFile{Field: "mask", Filename: edit.Mask.Name, ContentType: edit.Mask.MediaType, Data: edit.Mask.Data})
	}
	tokens, rejected := checkEditFiles(files)
	if rejected != nil {
		return 0, FakeResultFrom(*rejected).Err
	}
	return tokens, nil
}

// FakeError returns the *imagegen.Error that a provider builds from an HTTP
// error response with this status, error type, code, message and headers, as
// imagegen.NewAPIError classifies it. header may be nil. The error's
// Provider is empty; an imagegen.Client fills it in.
func FakeError(status int, typ, code, message string, header http.Header) error {
	return imagegen.NewAPIError(imagegen.APIErrorInfo{
		StatusCode: status,
		Header:     header,
		Type:       typ,
		Code:       code,
		Message:    message,
	})
}

// FakeResultFrom converts a scripted Server response into the FakeResult that a
// provider would produce from it, so that tests can share one script between
// Server and FakeProvider:
//
//   - Delay carries over.
//   - Drop becomes a transport error of class ClassOutcomeUnknown that wraps
//     io.EOF.
//   - A status of 400 or more becomes FakeError of the status, the headers
//     and Error, or the body's error JSON; a body that is not error JSON,
//     such as HTMLProxyError's, gives the status text as message.
//   - A 2xx response with a Body, such as EmptyData or BadBase64, becomes an
//     error of class ClassOutcomeUnknown, as provider/openai reports it: the
//     body holds no usable image, but the service may have billed the call.
//   - Anything else is a normal success.
func FakeResultFrom(r Response) FakeResult {
	out := FakeResult{Delay: r.Delay}
	status := r.Status
	if status == 0 && (r.Body != "" || r.Error != nil) {
		status = http.StatusOK
	}
	switch {
	case r.Drop:
		out.Err = imagegen.NewTransportError("", "",
			fmt.Errorf("imagegentest: connection closed without a response: %w", io.EOF), true)
	case status >= 400:
		e := r.Error
		if e == nil {
			e = parseErrorBody(r.Body)
		}
		if e == nil {
			e = &APIError{Message: http.StatusText(status)}
		}
		out.Err = imagegen.NewAPIError(imagegen.APIErrorInfo{
			StatusCode: status,
			Header:     r.Header,
			Type:       e.Type,
			Code:       e.Code,
			Param:      e.Param,
			Message:    e.Message,
		})
	case status != 0:
		out.Err = &imagegen.Error{
			StatusCode: status,
			Class:      imagegen.ClassOutcomeUnknown,
			Message:    "the response contains no usable image",
		}
	}
	return out
}

// parseErrorBody reads OpenAI's {"error":{...}} body, or returns nil.
func parseErrorBody(body string) *APIError {
	if !strings.HasPrefix(strings.TrimSpace(body), "{") {
		return nil
	}
	var envelope struct {
		Error *struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Param   string `json:"param"`
			Code    any    `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal([]byte(body), &envelope) != nil || envelope.Error == nil {
		return nil
	}
	e := envelope.Error
	code := ""
	if e.Code != nil {
		code = fmt.Sprint(e.Code) // Azure sends numeric codes.
	}
	return &APIError{Message: e.Message, Type: e.Type, Param: e.Param, Code: code}
}

// tinyPNG returns a 1x1 opaque PNG, encoded once.
var tinyPNG = sync.OnceValue(func() []byte {
	data, err := renderImage(imageKey{prompt: "tiny", width: 1, height: 1, format: "png"}, nil)
	if err != nil {
		return nil
	}
	return data
})

// TinyPNG returns a valid 1x1 PNG, a new copy on each call.
func TinyPNG() []byte {
	return bytes.Clone(tinyPNG())
}
