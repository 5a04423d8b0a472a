// Package openaix converts the outcome of an openai-go call into imagegen's
// terms, for the providers built on that SDK.
package openaix

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/imagegen-go/imagegen"
)

// TraceSent returns ctx with an HTTP client trace that sets the returned
// flag once the request has been written to the connection, so that a later
// failure can tell whether the service may have received it.
func TraceSent(ctx context.Context) (context.Context, *atomic.Bool) {
	sent := new(atomic.Bool)
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		// A failed write means the service did not get the whole request.
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				sent.Store(true)
			}
		},
	})
	return ctx, sent
}

// ConvertError returns err, which an openai-go call returned, as an
// *imagegen.Error. An *openai.Error becomes a classified API error with the
// status, type, code, param, message and response headers. A transport
// failure becomes a transport error, sent or not as the trace of TraceSent
// reported, and ctx's own error wins when ctx ended. Any other error means
// that the SDK rejected its configuration before sending, which is
// ClassUnknown and not retried. received is when the response arrived, for
// HTTP-date Retry-After values.
func ConvertError(ctx context.Context, providerName, model string, err error, sent bool, received time.Time) error {
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		info := imagegen.APIErrorInfo{
			Provider:   providerName,
			Model:      model,
			StatusCode: apiErr.StatusCode,
			Type:       apiErr.Type,
			Code:       apiErr.Code,
			Param:      apiErr.Param,
			Message:    apiErr.Message,
			Now:        received,
		}
		if apiErr.Response != nil {
			info.Header = apiErr.Response.Header
		}
		if info.Message == "" && info.Code == "" {
			info.Message = "the service returned " + http.StatusText(apiErr.StatusCode) + " without an OpenAI error body"
		}
		return imagegen.NewAPIError(info)
	}

	var urlErr *url.Error
	if !errors.As(err, &urlErr) && ctx.Err() == nil {
		return &imagegen.Error{Provider: providerName, Model: model, Class: imagegen.ClassUnknown, Err: err}
	}
	// The caller's own cancellation wins over the transport's error.
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		err = fmt.Errorf("%w: %w", ctxErr, err)
	}
	return imagegen.NewTransportError(providerName, model, err, sent)
}

// RedactSecrets replaces every occurrence of each secret in the service's
// fields of err (message, type, code, param) with "[REDACTED]", for keys
// whose shape imagegen.Redact does not recognize, such as Azure's hex keys.
// Secrets shorter than 8 bytes are ignored, so that common words survive.
func RedactSecrets(err error, secrets ...string) error {
	var e *imagegen.Error
	if !errors.As(err, &e) {
		return err
	}
	for _, secret := range secrets {
		if len(secret) < 8 {
			continue
		}
		for _, field := range []*string{&e.Message, &e.Type, &e.Code, &e.Param} {
			*field = strings.ReplaceAll(*field, secret, "[REDACTED]")
		}
	}
	return err
}
