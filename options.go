package imagegen

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/imagegen-go/imagegen/provider"
)

// Option configures a Client in New. Options return errors instead of
// panicking; New reports the first one.
type Option func(*config) error

// ProviderOption configures one provider registered with WithProvider.
type ProviderOption func(*providerConfig) error

type config struct {
	providers    []providerConfig
	logger       *slog.Logger
	hooks        []Hooks
	retry        RetryPolicy
	defaultModel string
	catalog      *Catalog
	budget       *Budget
	allowRetired bool
	fallback     FallbackPolicy
	strategy     Strategy
	breaker      BreakerSettings
	limiter      Limiter
	cache        Cache
	cacheOpts    CacheOptions
	dedup        bool
	dedupTimeout time.Duration
}

type providerConfig struct {
	provider    provider.Provider
	models      []string
	weight      float64
	limits      *Limits
	modelLimits map[string]Limits
}

// WithProvider adds a provider. Providers are tried in the order they are
// added, unless another ordering strategy is configured. At least one is
// required, and names must be unique.
func WithProvider(p provider.Provider, opts ...ProviderOption) Option {
	return func(c *config) error {
		if p == nil {
			return errors.New("imagegen: WithProvider: nil provider")
		}
		pc := providerConfig{provider: p}
		for _, opt := range opts {
			if opt == nil {
				continue
			}
			if err := opt(&pc); err != nil {
				return fmt.Errorf("imagegen: provider %q: %w", p.Name(), err)
			}
		}
		c.providers = append(c.providers, pc)
		return nil
	}
}

// WithModels sets the provider's model fallback chain, tried in order, such
// as the newest model and then an older one. For Azure OpenAI these are
// deployment names. A call that names a model uses this provider only when
// the chain contains that model. Without WithModels, the provider serves the
// model each call requests, or the Client's default model.
func WithModels(models ...string) ProviderOption {
	return func(pc *providerConfig) error {
		if len(models) == 0 {
			return errors.New("WithModels: no model given")
		}
		for _, m := range models {
			if m == "" {
				return errors.New("WithModels: empty model name")
			}
		}
		pc.models = append([]string(nil), models...)
		return nil
	}
}

// WithLogger sets the logger for retries, fallbacks, breaker changes and
// swallowed errors. Nil, the default, means no logging. Prompts are logged
// only at Debug level and truncated; keys are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		c.logger = l
		return nil
	}
}

// WithHooks registers callbacks that observe the Client's calls. It may be
// given several times; hooks run in registration order.
func WithHooks(h Hooks) Option {
	return func(c *config) error {
		c.hooks = append(c.hooks, h)
		return nil
	}
}

// WithRetry sets the retry policy. Zero fields keep their defaults.
func WithRetry(p RetryPolicy) Option {
	return func(c *config) error {
		if err := p.validate(); err != nil {
			return err
		}
		c.retry = p
		return nil
	}
}

// WithDefaultModel sets the model used by calls that name none and by
// providers without WithModels. Default "gpt-image-2".
func WithDefaultModel(model string) Option {
	return func(c *config) error {
		if model == "" {
			return errors.New("imagegen: WithDefaultModel: empty model name")
		}
		c.defaultModel = model
		return nil
	}
}

// WithCatalog replaces the model catalog that validates requests, picks
// presets and prices images. Default: DefaultCatalog(). Extend it with
// (*Catalog).With to add models or correct prices.
func WithCatalog(cat *Catalog) Option {
	return func(c *config) error {
		if cat == nil {
			return errors.New("imagegen: WithCatalog: nil catalog")
		}
		c.catalog = cat
		return nil
	}
}

// WithBudget caps spending. Each call reserves its estimated cost before
// the first request and fails with an error matching ErrBudgetExceeded when
// the reservation does not fit; see Budget.
func WithBudget(b *Budget) Option {
	return func(c *config) error {
		if b == nil {
			return errors.New("imagegen: WithBudget: nil budget")
		}
		c.budget = b
		return nil
	}
}

// WithRetiredModels lets calls use models that the catalog lists as retired
// on providers that enforce retirement (OpenAI's own endpoint). Without it
// such calls fail before any request with an error naming the shutdown date
// and the replacement.
func WithRetiredModels() Option {
	return func(c *config) error {
		c.allowRetired = true
		return nil
	}
}

// DefaultModel is the model a Client uses when neither the call nor
// WithDefaultModel names one.
const DefaultModel = "gpt-image-2"

// GenerateOptions are the parameters of one Generate call. The zero value
// requests one image from the default model with the service's defaults.
// String fields left empty are not sent.
type GenerateOptions struct {
	// Model overrides the default model, such as "gpt-image-2.6-sunburst".
	Model string

	// N is the number of images, 1 to 10. Zero means 1.
	N int

	// Size is "auto" or "WIDTHxHEIGHT", such as "1536x1024".
	Size string

	// Quality is "low", "medium", "high" or "auto"; some models add "xhigh"
	// and "max".
	Quality string

	// Background is "transparent" (png or webp only), "opaque" or "auto".
	Background string

	// OutputFormat is "png", "jpeg" or "webp" (some models add more).
	OutputFormat string

	// OutputCompression is 0 to 100 for jpeg and webp output. Nil means the
	// service default.
	OutputCompression *int

	// Moderation is "auto" or "low".
	Moderation string

	// Style is "vivid" or "natural", for DALL·E 3 only.
	Style string

	// SafetyIdentifier is a stable hash of your end user's id, which the
	// service uses to detect abuse. Never put personal data in it.
	SafetyIdentifier string

	// Extra holds request fields this library does not model yet. They are
	// sent as they are and override known fields of the same name.
	Extra map[string]any

	// Preset, AspectRatio and MaxCostPerImage let the Client pick Size and
	// Quality from the model's catalog entry (see Catalog.Select), when
	// neither is set. Preset names a use case ("preview", "web", "print").
	// AspectRatio is "W:H", such as "16:9". MaxCostPerImage caps one image's
	// estimated cost in US dollars. Result.Choice reports the pick and why.
	Preset          Preset
	AspectRatio     string
	MaxCostPerImage float64

	// Cache is the call's cache policy (see WithCache). CacheUse, the
	// default, reads and stores. CacheBypass, CacheRefresh and CacheReadOnly
	// skip the read, the store or both.
	Cache CachePolicy

	// CacheTTL overrides CacheOptions.TTL for the images this call stores.
	CacheTTL time.Duration

	// CacheNamespace overrides CacheOptions.Namespace for this call.
	CacheNamespace string
}

// selects reports whether the options ask the catalog to pick size and quality.
func (o *GenerateOptions) selects() bool {
	return o.Preset != "" || o.AspectRatio != "" || o.MaxCostPerImage > 0
}

// request converts the options to a provider request for prompt.
func (o *GenerateOptions) request(prompt, model string) provider.Request {
	n := o.N
	if n == 0 {
		n = 1
	}
	return provider.Request{
		Prompt:            prompt,
		Model:             model,
		N:                 n,
		Size:              o.Size,
		Quality:           o.Quality,
		Background:        o.Background,
		OutputFormat:      o.OutputFormat,
		OutputCompression: o.OutputCompression,
		Moderation:        o.Moderation,
		Style:             o.Style,
		SafetyIdentifier:  o.SafetyIdentifier,
		Extra:             o.Extra,
	}
}

// EditOptions are the parameters of one Edit call.
type EditOptions struct {
	GenerateOptions

	// Mask is an optional PNG whose fully transparent areas mark where the
	// first image should be edited.
	Mask *provider.File

	// InputFidelity is "high" or "low": how closely the output keeps the
	// input images' features. Empty means the service default.
	InputFidelity string
}

// RetryPolicy decides how often and how long the Client retries one
// provider and model before it moves to the next. Zero fields mean the
// documented default.
//
// Delays grow exponentially: the n-th retry waits InitialDelay ×
// Multiplier^(n-1), capped at MaxDelay, randomized by ±Jitter of itself. With
// the defaults the waits are about 1 s, 2 s, 4 s (each ±50 %). A wait the
// service requests (Retry-After and similar headers) replaces the computed
// delay. A requested wait longer than MaxWait is not slept, and the Client
// moves to the next provider at once.
type RetryPolicy struct {
	// MaxAttempts is the number of attempts on one provider and model,
	// including the first. Default 3; 1 disables retries.
	MaxAttempts int

	// MaxCallAttempts is the number of attempts one call may make across all
	// providers and models. Default 6.
	MaxCallAttempts int

	// InitialDelay is the delay before the first retry. Default 1 s.
	InitialDelay time.Duration

	// Multiplier is the growth factor of the delay. Default 2.
	Multiplier float64

	// MaxDelay caps a computed delay. Default 30 s.
	MaxDelay time.Duration

	// Jitter is the randomization factor: a delay d is drawn uniformly from
	// [d×(1-Jitter), d×(1+Jitter)]. Default 0.5; see NoJitter.
	Jitter float64

	// NoJitter turns randomization off, for predictable tests.
	NoJitter bool

	// MaxWait is the longest wait the service may ask for that the Client
	// still sleeps before retrying the same provider. Default 60 s.
	MaxWait time.Duration

	// AttemptTimeout bounds one provider call. Default 10 min, because
	// high-quality generations routinely take 1 to 3 minutes. The caller's
	// context deadline always wins.
	AttemptTimeout time.Duration

	// MaxElapsed bounds the whole call, waits included. Zero means no bound
	// other than the caller's context.
	MaxElapsed time.Duration

	// OutcomeUnknown decides what happens after an attempt whose request was
	// sent but got no response (ClassOutcomeUnknown and ClassTimeout): the
	// service may have generated and billed the image, so a retry may be
	// billed twice. Default RetryUnknownOutcome.
	OutcomeUnknown OutcomePolicy

	// RetryBudget is the fraction of recent calls that may be retried,
	// client-wide, so that an outage does not turn into a retry storm.
	// Default 0.2: on top of a reserve of 10 retries, every call earns 0.2
	// retries, and every retry spends 1. Moves to another provider are not
	// retries and are not limited by it.
	RetryBudget float64
}

// OutcomePolicy is the Client's action after an attempt whose outcome is
// unknown.
type OutcomePolicy int

const (
	// RetryUnknownOutcome retries the attempt like a server error and
	// counts it as possibly billed.
	RetryUnknownOutcome OutcomePolicy = iota
	// StopOnUnknownOutcome returns the error at once, so a request is never
	// billed twice.
	StopOnUnknownOutcome
)

func (p RetryPolicy) validate() error {
	switch {
	case p.MaxAttempts < 0:
		return fmt.Errorf("imagegen: invalid RetryPolicy.MaxAttempts %d: must be 1 or more, or 0 for the default 3", p.MaxAttempts)
	case p.MaxCallAttempts < 0:
		return fmt.Errorf("imagegen: invalid RetryPolicy.MaxCallAttempts %d: must be 1 or more, or 0 for the default 6", p.MaxCallAttempts)
	case p.InitialDelay < 0, p.MaxDelay < 0, p.MaxWait < 0, p.AttemptTimeout < 0, p.MaxElapsed < 0:
		return errors.New("imagegen: invalid RetryPolicy: durations must not be negative (0 means the default)")
	case p.Multiplier != 0 && p.Multiplier < 1:
		return fmt.Errorf("imagegen: invalid RetryPolicy.Multiplier %g: must be 1 or more, or 0 for the default 2", p.Multiplier)
	case p.Jitter < 0 || p.Jitter >= 1:
		return fmt.Errorf("imagegen: invalid RetryPolicy.Jitter %g: must be in [0, 1), 0 for the default 0.5", p.Jitter)
	case p.RetryBudget < 0:
		return fmt.Errorf("imagegen: invalid RetryPolicy.RetryBudget %g: must not be negative, 0 for the default 0.2", p.RetryBudget)
	case p.OutcomeUnknown != RetryUnknownOutcome && p.OutcomeUnknown != StopOnUnknownOutcome:
		return fmt.Errorf("imagegen: invalid RetryPolicy.OutcomeUnknown %d: use RetryUnknownOutcome or StopOnUnknownOutcome", p.OutcomeUnknown)
	}
	return nil
}

// withDefaults returns p with every zero field set to its default.
func (p RetryPolicy) withDefaults() RetryPolicy {
	p.MaxAttempts = cmp.Or(p.MaxAttempts, 3)
	p.MaxCallAttempts = cmp.Or(p.MaxCallAttempts, 6)
	p.InitialDelay = cmp.Or(p.InitialDelay, time.Second)
	p.Multiplier = cmp.Or(p.Multiplier, 2)
	p.MaxDelay = cmp.Or(p.MaxDelay, 30*time.Second)
	p.Jitter = cmp.Or(p.Jitter, 0.5)
	if p.NoJitter {
		p.Jitter = 0
	}
	p.MaxWait = cmp.Or(p.MaxWait, 60*time.Second)
	p.AttemptTimeout = cmp.Or(p.AttemptTimeout, 10*time.Minute)
	p.RetryBudget = cmp.Or(p.RetryBudget, 0.2)
	return p
}

func validateEditImages(images []provider.File) error {
	if len(images) == 0 {
		return &ValidationError{Field: "images", Reason: "an edit needs at least one input image"}
	}
	for i, f := range images {
		if len(f.Data) == 0 {
			return &ValidationError{Field: fmt.Sprintf("images[%d]", i), Value: f.Name, Reason: "the image has no data"}
		}
		if f.MediaType == "" {
			return &ValidationError{Field: fmt.Sprintf("images[%d]", i), Value: f.Name,
				Reason: "missing MediaType: set it, for example to \"image/png\"; services reject untyped uploads"}
		}
	}
	return nil
}

// prepare builds the call's request from the options, letting the catalog
// pick size and quality when the options ask for it.
func (c *Client) prepare(cl *call, prompt string, opts *GenerateOptions) error {
	model := opts.Model
	if model == "" {
		model = c.defaultModel
	}
	cl.req = opts.request(prompt, model)
	cl.cachePolicy, cl.cacheTTL, cl.cacheNamespace = opts.Cache, opts.CacheTTL, opts.CacheNamespace
	if opts.MaxCostPerImage < 0 {
		return &ValidationError{Field: "max_cost_per_image", Value: fmt.Sprint(opts.MaxCostPerImage), Reason: "must be positive, in US dollars"}
	}
	switch {
	case opts.Cache < CacheUse || opts.Cache > CacheReadOnly:
		return &ValidationError{Field: "cache", Value: opts.Cache.String(), Reason: "use CacheUse, CacheBypass, CacheRefresh or CacheReadOnly"}
	case opts.CacheTTL < 0:
		return &ValidationError{Field: "cache_ttl", Value: opts.CacheTTL.String(), Reason: "must not be negative"}
	}
	if !opts.selects() {
		return nil
	}
	if opts.Size != "" || opts.Quality != "" {
		return &ValidationError{Field: "preset", Value: string(opts.Preset),
			Reason: "Preset, AspectRatio and MaxCostPerImage pick Size and Quality: leave Size and Quality empty, or drop them"}
	}
	choice, err := c.catalog.Select(model, Selection{Preset: opts.Preset, AspectRatio: opts.AspectRatio, MaxCostPerImage: opts.MaxCostPerImage})
	if err != nil {
		return err
	}
	cl.req.Size, cl.req.Quality = choice.Size, choice.Quality
	cl.choice = &choice
	return nil
}
