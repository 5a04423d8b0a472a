// Package azure is an imagegen provider for Azure OpenAI image deployments.
//
// It is the provider of package provider/openai configured with openai-go's
// azure options: requests go to
// {Endpoint}/openai/deployments/{deployment}/images/generations?api-version={APIVersion}
// (and /images/edits), the request's model is the deployment name, and the
// API key is sent in the Api-Key header, or a Microsoft Entra ID token from
// TokenCredential as a bearer token. Errors, retries, image decoding and
// downloads behave as in provider/openai. It never reads environment
// variables.
package azure

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	oaiazure "github.com/openai/openai-go/v3/azure"
	"github.com/openai/openai-go/v3/option"

	"github.com/imagegen-go/imagegen/provider/openai"
)

// DefaultName is the provider's name when Options.Name is empty.
const DefaultName = "azure"

// Options configure an Azure OpenAI provider. Endpoint, APIVersion and one
// of APIKey and TokenCredential are required. Every other field may be
// left zero.
type Options struct {
	// Name is the provider's name in errors, logs and metrics. Default
	// DefaultName. Give each Azure resource its own name, such as
	// "azure-eastus", when a Client uses several.
	Name string

	// Endpoint is the resource's endpoint, such as
	// "https://my-resource.openai.azure.com". It must use https unless
	// AllowHTTP is set.
	Endpoint string

	// APIVersion is the Azure OpenAI REST API version sent as the
	// api-version query parameter. It must be a version that your resource
	// supports for image generation.
	APIVersion string

	// APIKey is the resource's key, sent in the Api-Key header. It never
	// appears in errors or logs. Set either APIKey or TokenCredential.
	APIKey string

	// TokenCredential authenticates with Microsoft Entra ID, for example a
	// credential from the azidentity package. Set either APIKey or
	// TokenCredential.
	TokenCredential azcore.TokenCredential

	// Deployment is the deployment used by requests that name no model.
	// Default: provider/openai's default model name, which only works if a
	// deployment has that name. The imagegen Client always names a model:
	// list your deployment names with imagegen.WithModels.
	Deployment string

	// HTTPClient sends the requests and downloads image URLs. Default: a new
	// http.Client without a timeout.
	HTTPClient *http.Client

	// Header holds extra headers sent with every request.
	Header http.Header

	// MaxImageBytes and DownloadTimeout are as in openai.Options.
	MaxImageBytes   int64
	DownloadTimeout time.Duration

	// AllowHTTP permits a plain-http Endpoint on localhost or a loopback
	// address, for local test servers. Credentials then travel unencrypted,
	// so never set it for a real resource.
	AllowHTTP bool

	// RequestOptions are extra openai-go options applied after the Azure
	// ones. The SDK's retries stay off.
	RequestOptions []option.RequestOption
}

// New returns a provider for one Azure OpenAI resource. It implements
// provider.Provider and provider.Editor and is safe for concurrent use. It
// returns an error naming the field when an option is invalid or missing.
func New(opts Options) (*openai.Provider, error) {
	if err := validate(&opts); err != nil {
		return nil, err
	}

	name := opts.Name
	if name == "" {
		name = DefaultName
	}

	azureOpts := []option.RequestOption{oaiazure.WithEndpoint(opts.Endpoint, opts.APIVersion)}
	if opts.APIKey != "" {
		azureOpts = append(azureOpts, oaiazure.WithAPIKey(opts.APIKey))
	} else {
		azureOpts = append(azureOpts, oaiazure.WithTokenCredential(opts.TokenCredential))
	}
	if opts.AllowHTTP {
		azureOpts = append(azureOpts, oaiazure.WithUnsafeAllowHTTP())
	}
	azureOpts = append(azureOpts, opts.RequestOptions...)

	return openai.New(openai.Options{
		Name: name,
		// The endpoint is passed as BaseURL too, so that the openai provider
		// does not treat it as OpenAI's own API, where retired models are
		// rejected. azure.WithEndpoint then sets the same base URL.
		BaseURL:         opts.Endpoint,
		HTTPClient:      opts.HTTPClient,
		Header:          opts.Header,
		Model:           opts.Deployment,
		MaxImageBytes:   opts.MaxImageBytes,
		DownloadTimeout: opts.DownloadTimeout,
		RequestOptions:  azureOpts,
		Secrets:         []string{opts.APIKey},
	})
}

// validate checks the options that openai-go would otherwise reject only
// when the first request is sent, where the failure would look like a
// network error.
func validate(opts *Options) error {
	u, err := url.Parse(opts.Endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("imagegen/azure: invalid Endpoint %q: want the resource's https URL, such as \"https://my-resource.openai.azure.com\"", opts.Endpoint)
	}
	if u.Scheme == "http" {
		if !opts.AllowHTTP {
			return fmt.Errorf("imagegen/azure: invalid Endpoint %q: plain http would send the credential unencrypted; use https, or set AllowHTTP for a local test server", opts.Endpoint)
		}
		if !isLoopback(u.Hostname()) {
			return fmt.Errorf("imagegen/azure: invalid Endpoint %q: AllowHTTP permits only localhost and loopback addresses", opts.Endpoint)
		}
	}
	if strings.TrimSpace(opts.APIVersion) == "" {
		return errors.New("imagegen/azure: missing APIVersion: set the Azure OpenAI API version that your resource supports for image generation")
	}
	switch {
	case opts.APIKey == "" && opts.TokenCredential == nil:
		return errors.New("imagegen/azure: missing credential: set Options.APIKey or Options.TokenCredential")
	case opts.APIKey != "" && opts.TokenCredential != nil:
		return errors.New("imagegen/azure: both APIKey and TokenCredential are set: set only one of them")
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
