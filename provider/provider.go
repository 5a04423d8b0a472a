// Package provider defines the contract between an imagegen Client and one
// image generation service.
//
// A Provider turns a Request into a Response with one HTTP call (or none, for
// fakes) and nothing more: it does not retry, wait for rate limits, cache or
// fall back, because the Client does all of that across providers. Custom
// providers implement Provider in their own packages without touching the rest
// of the library.
//
// Optional capabilities are separate interfaces that a Provider may also
// implement, so that adding one never breaks existing providers. [Editor]
// edits images. The Client checks for them with a type assertion.
//
// Errors returned by a Provider should be *imagegen.Error values (see
// imagegen.NewAPIError and imagegen.NewTransportError) so that the Client can
// classify them. Any other error is classified from its type (context errors,
// net.Error, io.ErrUnexpectedEOF) and otherwise treated as not retryable.
package provider

import (
	"context"
	"time"
)

// Provider is one image generation service, such as OpenAI, an Azure OpenAI
// resource or an OpenAI-compatible gateway.
//
// Implementations must be safe for concurrent use. Generate sends at most one
// upstream request; it must honour ctx and return promptly when ctx is done.
type Provider interface {
	// Name returns a short, stable name used in errors, logs and metrics,
	// such as "openai" or "azure-eastus". Names must be unique within a Client.
	Name() string

	// Generate creates req.N images from req.Prompt. A nil error means the
	// Response holds exactly the images the service returned, decoded to
	// bytes. A 2xx response without a usable image must be an error.
	Generate(ctx context.Context, req *Request) (*Response, error)
}

// Editor is implemented by providers that can edit or extend existing images.
type Editor interface {
	// Edit creates req.N images from req.Prompt and the input images. Its
	// contract is the same as Provider.Generate.
	Edit(ctx context.Context, req *EditRequest) (*Response, error)
}

// RetirementEnforcer is implemented by providers that can tell whether
// their service has shut down the models it retired. OpenAI's own endpoint
// has; gateways and Azure deployments may still serve old model names. The
// Client rejects a retired model before any request only for providers
// whose EnforcesRetirement returns true.
type RetirementEnforcer interface {
	EnforcesRetirement() bool
}

// Request is one image generation request. String fields left empty are not
// sent, so the service applies its own default. The Client fills Model and
// validates the fields before it calls a Provider.
type Request struct {
	// Prompt is the text description of the image. Required.
	Prompt string

	// Model is the model or, for Azure OpenAI, the deployment name.
	Model string

	// N is the number of images to generate. Zero means 1.
	N int

	// Size is "auto" or "WIDTHxHEIGHT" in pixels, such as "1024x1536".
	Size string

	// Quality is the rendering quality, such as "low", "medium", "high" or
	// "auto". The vocabulary depends on the model.
	Quality string

	// Background is "transparent", "opaque" or "auto".
	Background string

	// OutputFormat is the image encoding, such as "png", "jpeg" or "webp".
	OutputFormat string

	// OutputCompression is the compression level from 0 to 100 for jpeg and
	// webp output. Nil means the service default.
	OutputCompression *int

	// Moderation is the moderation level, "auto" or "low".
	Moderation string

	// Style is the DALL·E 3 style, "vivid" or "natural".
	Style string

	// SafetyIdentifier is a stable, hashed identifier of the end user that the
	// service uses to detect abuse. It must not contain personal data.
	SafetyIdentifier string

	// Extra holds request fields that this library does not model yet. They
	// are sent as JSON fields next to the known ones and override them.
	Extra map[string]any
}

// EditRequest is a request to edit or extend one or more input images.
type EditRequest struct {
	Request

	// Images are the input images, at least one.
	Images []File

	// Mask is an optional PNG whose fully transparent areas mark where
	// the first image should be edited.
	Mask *File

	// InputFidelity is "high" or "low": how closely the output keeps the
	// input images' features. Empty means the service default.
	InputFidelity string
}

// File is an input image sent with an edit request.
type File struct {
	// Name is the file name sent in the multipart form, such as "photo.png".
	Name string

	// MediaType is the MIME type, such as "image/png". Required: services
	// reject application/octet-stream.
	MediaType string

	// Data is the encoded image.
	Data []byte
}

// Image is one generated image.
type Image struct {
	// Data is the encoded image, never a URL.
	Data []byte

	// MediaType is the MIME type of Data, such as "image/png".
	MediaType string

	// RevisedPrompt is the prompt the model actually used, when the service
	// rewrote it. Empty otherwise.
	RevisedPrompt string
}

// Usage is the token usage that the service reported for one call.
type Usage struct {
	// InputTokens is the total of text and image input tokens.
	InputTokens int64

	// InputTextTokens and InputImageTokens split InputTokens by kind.
	InputTextTokens  int64
	InputImageTokens int64

	// OutputTokens is the number of image output tokens.
	OutputTokens int64

	// TotalTokens is InputTokens plus OutputTokens.
	TotalTokens int64
}

// Response is the result of one successful provider call.
type Response struct {
	// Images holds the generated images in the order the service returned them.
	Images []Image

	// Usage is the token usage, or nil when the service did not report it.
	Usage *Usage

	// Model is the model that generated the images, as the service reported
	// it, or else the requested model.
	Model string

	// RequestID is the service's identifier of the call, such as OpenAI's
	// x-request-id header. Empty when unknown.
	RequestID string

	// Size, Quality, Background and OutputFormat echo what the service
	// reports it produced. Empty when not reported.
	Size         string
	Quality      string
	Background   string
	OutputFormat string

	// RateLimit is the quota state that the service reported with the
	// response, used to pace later requests.
	RateLimit RateLimit

	// Warnings lists every request field that the provider could not send
	// as asked, such as a field its endpoint lacks that it dropped or
	// passed as a hint in the prompt. The Client adds them to
	// Result.Warnings. Nil when the provider sent the request as asked.
	Warnings []string
}

// RateLimit is a service's report of its quota, from headers such as
// x-ratelimit-remaining-requests. The zero value means nothing was reported.
type RateLimit struct {
	Requests Quota
	Tokens   Quota
}

// Quota is the state of one rate-limit window.
type Quota struct {
	// Known reports whether the service sent this window's headers. The other
	// fields are meaningful only when Known is true.
	Known bool

	// Limit is the window's capacity and Remaining what is left of it.
	Limit     int64
	Remaining int64

	// Reset is how long until the window is full again, measured from the
	// moment the response was received.
	Reset time.Duration
}
