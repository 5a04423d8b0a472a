// Package openai is an imagegen provider for OpenAI's Images API and any
// service that speaks the same wire format (OpenAI-compatible gateways).
//
// It is built on github.com/openai/openai-go/v3 with the SDK's own retries
// turned off, because the imagegen Client owns retrying. It never reads
// environment variables: pass the API key explicitly, for example from
// os.Getenv("OPENAI_API_KEY") in your main package.
package openai

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

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/internal/httpx"
	"github.com/imagegen-go/imagegen/internal/openaix"
	"github.com/imagegen-go/imagegen/provider"
)

// Defaults for Options fields left zero.
const (
	// DefaultBaseURL is OpenAI's own API endpoint.
	DefaultBaseURL = "https://api.openai.com/v1"
	// DefaultModel is the model used when neither the request nor Options name one.
	DefaultModel = "gpt-image-2"
	// DefaultMaxImageBytes caps one image's decoded size and one URL download.
	DefaultMaxImageBytes = 64 << 20
	// DefaultDownloadTimeout bounds the download of one image URL.
	DefaultDownloadTimeout = 60 * time.Second
)

// Options configure a Provider. The zero value of every field has a
// documented default; APIKey is required unless HTTPClient or RequestOptions
// authenticate another way.
type Options struct {
	// Name is the provider's name in errors, logs and metrics. Default "openai".
	Name string

	// APIKey is sent as a bearer token. It never appears in errors or logs.
	APIKey string

	// BaseURL is the API root, such as "https://gateway.example/v1".
	// Default DefaultBaseURL.
	BaseURL string

	// HTTPClient sends the requests. Default: a new http.Client without a
	// timeout, because the imagegen Client bounds each attempt with its
	// context and high-quality images take minutes.
	HTTPClient *http.Client

	// Organization and Project select the OpenAI organization and project.
	Organization string
	Project      string

	// Header holds extra headers sent with every request.
	Header http.Header

	// Model is the default model for requests that do not name one.
	// Default DefaultModel.
	Model string

	// MaxImageBytes caps one image's size, decoded or downloaded. A larger
	// image fails the call. Default DefaultMaxImageBytes.
	MaxImageBytes int64

	// DownloadTimeout bounds the download of an image that the service
	// returned as a URL. Default DefaultDownloadTimeout.
	DownloadTimeout time.Duration

	// DownloadClient fetches images that the service returns as URLs.
	// Default: a new http.Client, not HTTPClient, so that credentials that
	// HTTPClient's transport adds never reach the hosts those URLs name.
	// Set it to reach image hosts through a proxy.
	DownloadClient *http.Client

	// RequestOptions are extra openai-go options applied after the ones
	// above, for example to reach Azure OpenAI. The SDK's retries stay off.
	RequestOptions []option.RequestOption

	// Secrets are values, such as a key passed in RequestOptions, that are
	// removed from error messages like APIKey is.
	Secrets []string
}

// Provider calls an OpenAI-compatible Images API. It implements
// provider.Provider and provider.Editor and is safe for concurrent use.
type Provider struct {
	name            string
	model           string
	official        bool
	secrets         []string // removed from error messages
	httpClient      *http.Client
	downloadClient  *http.Client
	maxImageBytes   int64
	downloadTimeout time.Duration
	images          openai.ImageService
}

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.Editor   = (*Provider)(nil)
)

// New returns a Provider configured by opts. It returns an error naming the
// field when an option is invalid.
func New(opts Options) (*Provider, error) {
	fetch, err := openaix.NewFetch("imagegen/openai", openaix.Fetch{
		HTTPClient: opts.HTTPClient, DownloadClient: opts.DownloadClient,
		MaxImageBytes: opts.MaxImageBytes, DownloadTimeout: opts.DownloadTimeout,
	}, DefaultMaxImageBytes, DefaultDownloadTimeout)
	if err != nil {
		return nil, err
	}
	p := &Provider{
		name:            opts.Name,
		model:           opts.Model,
		httpClient:      fetch.HTTPClient,
		downloadClient:  fetch.DownloadClient,
		maxImageBytes:   fetch.MaxImageBytes,
		downloadTimeout: fetch.DownloadTimeout,
	}
	if p.name == "" {
		p.name = "openai"
	}
	if p.model == "" {
		p.model = DefaultModel
	}

	baseURL := opts.BaseURL
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("imagegen/openai: invalid BaseURL %q: want an absolute http or https URL such as %q", baseURL, DefaultBaseURL)
	}
	p.official = strings.EqualFold(u.Hostname(), "api.openai.com")
	p.secrets = append([]string{opts.APIKey}, opts.Secrets...)
	if opts.APIKey == "" && opts.HTTPClient == nil && len(opts.RequestOptions) == 0 {
		return nil, errors.New("imagegen/openai: missing APIKey: set Options.APIKey, for example from os.Getenv(\"OPENAI_API_KEY\")")
	}

	var extra []option.RequestOption
	if opts.Organization != "" {
		extra = append(extra, option.WithOrganization(opts.Organization))
	}
	if opts.Project != "" {
		extra = append(extra, option.WithProject(opts.Project))
	}
	extra = append(extra, opts.RequestOptions...)
	reqOpts := openaix.RequestOptions(baseURL, p.httpClient, opts.APIKey, opts.Header, extra...)
	p.images = openai.NewImageService(reqOpts...)
	return p, nil
}

// Name returns the provider's name.
func (p *Provider) Name() string { return p.name }

// DefaultModel returns the model used for requests that do not name one.
func (p *Provider) DefaultModel() string { return p.model }

// EnforcesRetirement reports whether the provider calls OpenAI's own
// endpoint, where retired models are shut down. Gateways and Azure
// deployments may still serve them.
func (p *Provider) EnforcesRetirement() bool { return p.official }

// Generate sends req to POST /images/generations.
func (p *Provider) Generate(ctx context.Context, req *provider.Request) (*provider.Response, error) {
	if req == nil {
		return nil, errors.New("imagegen/openai: nil request")
	}
	model := p.modelFor(req)
	params := generateParams(req, model)

	return p.do(ctx, model, func(ctx context.Context, opts ...option.RequestOption) error {
		_, err := p.images.Generate(ctx, params, opts...)
		return err
	})
}

// Edit sends req to POST /images/edits as a multipart form.
func (p *Provider) Edit(ctx context.Context, req *provider.EditRequest) (*provider.Response, error) {
	if req == nil {
		return nil, errors.New("imagegen/openai: nil request")
	}
	if len(req.Images) == 0 {
		return nil, &imagegen.ValidationError{Field: "images", Reason: "an edit needs at least one input image"}
	}
	model := p.modelFor(&req.Request)
	params := editParams(req, model)

	return p.do(ctx, model, func(ctx context.Context, opts ...option.RequestOption) error {
		_, err := p.images.Edit(ctx, params, opts...)
		return err
	})
}

func (p *Provider) modelFor(req *provider.Request) string {
	if req.Model != "" {
		return req.Model
	}
	return p.model
}

// do runs one SDK call that leaves the raw response to us, then decodes it.
func (p *Provider) do(ctx context.Context, model string, call func(context.Context, ...option.RequestOption) error) (*provider.Response, error) {
	ctx, sent := openaix.TraceSent(ctx)

	var raw *http.Response
	err := call(ctx, option.WithResponseBodyInto(&raw))
	received := time.Now()
	if err != nil {
		return nil, openaix.RedactSecrets(openaix.ConvertError(ctx, p.name, model, err, sent.Load(), received), p.secrets...)
	}
	if raw == nil || raw.Body == nil {
		return nil, &imagegen.Error{Provider: p.name, Model: model, Class: imagegen.ClassServer,
			Message: "the service returned no response body"}
	}
	defer raw.Body.Close()

	resp, err := p.decodeResponse(ctx, raw, model)
	if err != nil {
		return nil, err
	}
	resp.RequestID = raw.Header.Get("X-Request-Id")
	resp.RateLimit = httpx.RateLimit(raw.Header)
	return resp, nil
}
