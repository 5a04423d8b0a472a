// Package chatgateway is an imagegen provider for gateways that serve image
// models only through the chat completions endpoint,
// POST {BaseURL}/chat/completions, and return each image inside the
// assistant message.
//
// # Request
//
// The prompt is sent as one user message. The chat endpoint has no fields
// for the image options, so Size, Quality, Background and OutputFormat are
// appended to the prompt as one line of text, which the model may or may
// not follow (see [Options.NoPromptHints]):
//
//	<prompt>
//
//	Image requirements: size 1024x1536 pixels, quality high, transparent background, png format.
//
// N is sent as the chat field n, SafetyIdentifier as safety_identifier and
// Extra as top-level JSON fields. OutputCompression, Moderation and Style
// cannot be expressed and are dropped. Every hinted or dropped field is
// listed in provider.Response.Warnings.
//
// # Response
//
// Images are read from every choice's assistant message, in these forms:
//
//   - content parts of type image_url, {"image_url": {"url": …}}, and the
//     same parts in a message field "images", which some gateways use;
//   - markdown images in the text, ![alt](data:image/png;base64,…) or
//     ![alt](https://…);
//   - data URLs in the text, data:image/png;base64,…, when the text has no
//     markdown image;
//   - bare http or https URLs in the text, when it has neither.
//
// Data URLs are decoded and URLs are downloaded with Options.DownloadClient,
// without the API key or Options.Header, within MaxImageBytes and
// DownloadTimeout. Only http and https URLs are downloaded. A 2xx response
// without a usable image is an *imagegen.Error of class
// ClassOutcomeUnknown, because the gateway may have billed it, or
// ClassContentRejected when the model refused.
//
// Image URLs come from the model's output, which a prompt can influence. When
// prompts come from untrusted users, give Options.DownloadClient a
// transport that only reaches the hosts that the gateway serves images from.
package chatgateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/param"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/internal/httpx"
	"github.com/imagegen-go/imagegen/internal/openaix"
	"github.com/imagegen-go/imagegen/provider"
)

// Defaults for Options fields left zero.
const (
	// DefaultName is the provider's name when Options.Name is empty.
	DefaultName = "chatgateway"
	// DefaultMaxImageBytes caps the size of one image, decoded or downloaded.
	DefaultMaxImageBytes = 50 << 20
	// DefaultDownloadTimeout bounds the download of one image URL.
	DefaultDownloadTimeout = 60 * time.Second
)

// Options configure a Provider. The zero value of every field except
// BaseURL has a documented default.
type Options struct {
	// Name is the provider's name in errors, logs and metrics. Default
	// DefaultName.
	Name string

	// APIKey is sent as a bearer token. It never appears in errors or logs.
	// It may be empty for gateways that authenticate another way, such as
	// through Header or HTTPClient.
	APIKey string

	// BaseURL is the API root that /chat/completions is appended to, such
	// as "https://gateway.example/v1". Required.
	BaseURL string

	// HTTPClient sends the chat requests and downloads image URLs. Default:
	// a new http.Client without a timeout, because the imagegen Client
	// bounds each attempt with its context.
	HTTPClient *http.Client

	// Header holds extra headers sent with every chat request, but not with
	// image downloads.
	Header http.Header

	// Model is the model for requests that do not name one. Optional,
	// because the imagegen Client always names one.
	Model string

	// ExtraFields are JSON fields sent with every chat request, such as
	// "modalities": []string{"image", "text"} for gateways that need it.
	// A request's Extra fields override them.
	ExtraFields map[string]any

	// NoPromptHints turns off the hints that pass Size, Quality, Background
	// and OutputFormat in the prompt. The fields are then dropped.
	NoPromptHints bool

	// MaxImageBytes caps the size of one image, decoded from a data URL or
	// downloaded. A larger image fails the call. Default
	// DefaultMaxImageBytes.
	MaxImageBytes int64

	// DownloadTimeout bounds the download of one image URL. Default
	// DefaultDownloadTimeout.
	DownloadTimeout time.Duration

	// DownloadClient fetches images that the service returns as URLs.
	// Default: a new http.Client, not HTTPClient, so that credentials that
	// HTTPClient's transport adds never reach the hosts those URLs name.
	// Set it to reach image hosts through a proxy.
	DownloadClient *http.Client

	// RequestOptions are extra openai-go options applied after the ones
	// above. The SDK's retries stay off, because the imagegen Client owns
	// retrying.
	RequestOptions []option.RequestOption
}

// Provider generates images through a gateway's chat completions endpoint.
// It implements provider.Provider and is safe for concurrent use.
type Provider struct {
	name            string
	model           string
	extraFields     map[string]any
	noPromptHints   bool
	httpClient      *http.Client
	downloadClient  *http.Client
	maxImageBytes   int64
	downloadTimeout time.Duration
	completions     openai.ChatCompletionService
	apiKey          string // removed from error messages
}

var _ provider.Provider = (*Provider)(nil)

// New returns a Provider configured by opts. It returns an error naming the
// field when an option is invalid. It reads no environment variables.
func New(opts Options) (*Provider, error) {
	fetch, err := openaix.NewFetch("imagegen/chatgateway", openaix.Fetch{
		HTTPClient: opts.HTTPClient, DownloadClient: opts.DownloadClient,
		MaxImageBytes: opts.MaxImageBytes, DownloadTimeout: opts.DownloadTimeout,
	}, DefaultMaxImageBytes, DefaultDownloadTimeout)
	if err != nil {
		return nil, err
	}
	p := &Provider{
		apiKey:          opts.APIKey,
		name:            opts.Name,
		model:           opts.Model,
		noPromptHints:   opts.NoPromptHints,
		httpClient:      fetch.HTTPClient,
		downloadClient:  fetch.DownloadClient,
		maxImageBytes:   fetch.MaxImageBytes,
		downloadTimeout: fetch.DownloadTimeout,
	}
	if p.name == "" {
		p.name = DefaultName
	}
	if len(opts.ExtraFields) > 0 {
		p.extraFields = make(map[string]any, len(opts.ExtraFields))
		for k, v := range opts.ExtraFields {
			p.extraFields[k] = v
		}
	}

	u, err := url.Parse(opts.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("imagegen/chatgateway: invalid BaseURL %q: want the gateway's absolute http or https API root, such as \"https://gateway.example/v1\"", opts.BaseURL)
	}

	reqOpts := openaix.RequestOptions(opts.BaseURL, p.httpClient, opts.APIKey, opts.Header, opts.RequestOptions...)
	p.completions = openai.NewChatCompletionService(reqOpts...)
	return p, nil
}

// Name returns the provider's name.
func (p *Provider) Name() string { return p.name }

// Generate sends req as a chat completion and returns the images found in
// the response. See the package documentation for how the request is mapped
// and where images are looked for.
func (p *Provider) Generate(ctx context.Context, req *provider.Request) (*provider.Response, error) {
	if req == nil {
		return nil, errors.New("imagegen/chatgateway: nil request")
	}
	model := req.Model
	if model == "" {
		model = p.model
	}
	if model == "" {
		return nil, &imagegen.ValidationError{Field: "model", Reason: "the request names no model and Options.Model is empty: set one of them"}
	}
	params, warnings := p.chatParams(req, model)

	ctx, sent := openaix.TraceSent(ctx)
	var raw *http.Response
	_, err := p.completions.New(ctx, params, option.WithResponseBodyInto(&raw))
	received := time.Now()
	if err != nil {
		return nil, openaix.RedactSecrets(openaix.ConvertError(ctx, p.name, model, err, sent.Load(), received), p.apiKey)
	}
	if raw == nil || raw.Body == nil {
		return nil, &imagegen.Error{Provider: p.name, Model: model, Class: imagegen.ClassServer,
			Message: "the gateway returned no response body"}
	}
	defer raw.Body.Close()

	resp, err := p.decodeResponse(ctx, raw, model, max(req.N, 1))
	if err != nil {
		return nil, err
	}
	resp.RequestID = raw.Header.Get("X-Request-Id")
	resp.RateLimit = httpx.RateLimit(raw.Header)
	resp.Warnings = warnings
	return resp, nil
}

// chatParams builds the chat request for req and lists the fields it could
// not send as asked.
func (p *Provider) chatParams(req *provider.Request, model string) (openai.ChatCompletionNewParams, []string) {
	var warnings []string
	var hints []string
	hint := func(field, value, text string) {
		if value == "" {
			return
		}
		if p.noPromptHints {
			warnings = append(warnings, fmt.Sprintf("%s %q dropped: the chat completions endpoint has no %s field", field, value, field))
			return
		}
		hints = append(hints, text)
		warnings = append(warnings, fmt.Sprintf("%s %q sent as a hint in the prompt: the chat completions endpoint has no %s field, so the model may ignore it", field, value, field))
	}
	hint("size", req.Size, "size "+req.Size+" pixels")
	hint("quality", req.Quality, "quality "+req.Quality)
	hint("background", req.Background, req.Background+" background")
	hint("output_format", req.OutputFormat, req.OutputFormat+" format")

	drop := func(field, value string) {
		if value != "" {
			warnings = append(warnings, fmt.Sprintf("%s %q dropped: the chat completions endpoint has no %s field", field, value, field))
		}
	}
	if req.OutputCompression != nil {
		drop("output_compression", fmt.Sprint(*req.OutputCompression))
	}
	drop("moderation", req.Moderation)
	drop("style", req.Style)

	prompt := req.Prompt
	if len(hints) > 0 {
		prompt += "\n\nImage requirements: " + strings.Join(hints, ", ") + "."
	}
	params := openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
	}
	if req.N > 1 {
		params.N = param.NewOpt(int64(req.N))
	}
	if req.SafetyIdentifier != "" {
		params.SafetyIdentifier = param.NewOpt(req.SafetyIdentifier)
	}
	if extra := mergeExtra(p.extraFields, req.Extra); len(extra) > 0 {
		params.SetExtraFields(extra)
	}
	return params, warnings
}

// mergeExtra returns the provider's extra fields overridden by the
// request's, without changing either map.
func mergeExtra(provider, request map[string]any) map[string]any {
	if len(provider) == 0 {
		return request
	}
	if len(request) == 0 {
		return provider
	}
	out := make(map[string]any, len(provider)+len(request))
	for k, v := range provider {
		out[k] = v
	}
	for k, v := range request {
		out[k] = v
	}
	return out
}
