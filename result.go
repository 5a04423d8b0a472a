package imagegen

import (
	"time"

	"github.com/imagegen-go/imagegen/provider"
)

// Result is the outcome of a successful Generate or Edit call.
type Result struct {
	// Images are the generated images, decoded to bytes. With a cache or
	// deduplication configured, the bytes may be shared with the cache and
	// with other callers: treat them as read-only, and copy before changing.
	Images []provider.Image

	// Provider and Model name the provider and model that produced the
	// images. Model is what the service reported, or the requested model.
	Provider string
	Model    string

	// Size and Quality are what the service reported it produced, or what
	// was requested when it reported neither.
	Size    string
	Quality string

	// Usage is the token usage the service reported, or nil.
	Usage *provider.Usage

	// Cost is the call's cost, from Usage when reported, otherwise an
	// estimate from the model catalog, or unknown.
	Cost Cost

	// RequestID is the service's id of the successful call.
	RequestID string

	// Latency is the wall time of the whole call, including waits and retries.
	Latency time.Duration

	// Attempts is the number of provider calls made, across all providers.
	// It is 0 when the result came from the cache or from another caller's
	// identical call in flight.
	Attempts int

	// Cached reports whether the images came from the cache.
	Cached bool

	// Shared reports whether the images came from an identical call that
	// another caller made at the same time (in-flight deduplication).
	Shared bool

	// Choice is the size and quality the catalog picked for a call that set
	// a Preset, AspectRatio or MaxCostPerImage; nil otherwise.
	Choice *Choice

	// Warnings lists every change the Client made to the request for the
	// provider or model that served the call, such as a dropped parameter or a
	// translated size, and every fallback taken.
	Warnings []string

	// altered reports whether the images were made for a changed request: a
	// fallback model's translated parameters, or parameters the provider
	// dropped. Such images are never cached under the original request.
	altered bool
}
