package imagegen

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Request limits that apply to every model.
const (
	// MaxPromptRunes is the maximum prompt length in characters (Unicode code
	// points) that OpenAI's image API accepts.
	MaxPromptRunes = 32000

	// MaxImagesPerRequest is the maximum n of one request. Models that make
	// fewer images per call (Model.MaxN) get the request split with SplitN.
	MaxImagesPerRequest = 10
)

// ErrModelRetired matches a *RetiredError with errors.Is.
var ErrModelRetired = errors.New("imagegen: model retired")

// Catalog lists image models with the request values each accepts, its
// prices and whether it has been shut down. The Client uses it to
// validate requests before sending them, to estimate and compute costs and to
// choose sizes and qualities.
//
// A Catalog is immutable after construction and safe for concurrent use.
// With returns a modified copy. A nil *Catalog behaves as an empty one: every
// model is unknown, so only model-independent checks apply and costs are
// unknown.
type Catalog struct {
	models map[string]*Model // by Model.Name
	index  map[string]string // Name or alias to Name
}

// Model is one catalog entry: a model family and what it accepts.
//
// A nil vocabulary list (Sizes, Qualities, OutputFormats, Backgrounds,
// Moderations, Styles) means the catalog does not check that field. An empty
// non-nil list, such as []string{}, means the model rejects the field, so a
// request must leave it empty.
type Model struct {
	// Name is the model name sent to the service, such as "gpt-image-2".
	Name string

	// Aliases are other names that resolve to this entry, such as dated
	// snapshots ("gpt-image-2-2026-04-21"). Lookup also resolves any
	// "<Name>-YYYY-MM-DD" that is not listed.
	Aliases []string

	// Sizes are the accepted size values, "auto" included when accepted.
	Sizes []string

	// FlexibleSize, when not nil, also accepts any WIDTHxHEIGHT within its
	// bounds.
	FlexibleSize *SizeRule

	// Qualities are the accepted quality values from lowest to highest,
	// with "auto" anywhere. Select relies on the order.
	Qualities []string

	// OutputFormats, Backgrounds, Moderations and Styles are the accepted
	// values of those request fields.
	OutputFormats []string
	Backgrounds   []string
	Moderations   []string
	Styles        []string

	// DefaultSize and DefaultQuality are the values the service uses when
	// the request leaves the field empty. Empty means "auto": cost estimates
	// then assume the most expensive size or quality.
	DefaultSize    string
	DefaultQuality string

	// MaxN is the maximum number of images per call. Zero means
	// MaxImagesPerRequest.
	MaxN int

	// SupportsEdits reports whether the model accepts edit requests.
	// ValidateEdit rejects edits for models where it is false.
	SupportsEdits bool

	// SupportsStreaming reports whether the model can stream partial images.
	SupportsStreaming bool

	// Pricing is the model's price list. Unpublished prices stay unknown.
	Pricing Pricing

	// OutputTokens is the number of image output tokens per image, by
	// quality and then size, used to estimate costs before a request.
	// Sizes missing from the table are estimated in proportion to their
	// pixel count. Nil means no estimate is possible.
	OutputTokens map[string]map[string]int64

	// Presets overrides the default preset settings for this model.
	Presets map[Preset]PresetSetting

	// Retired is when the service shut the model down, or the zero time
	// while it is available.
	Retired time.Time

	// Replacements are the models the service recommends instead, best
	// first. Empty when none was named.
	Replacements []string
}

// SizeRule bounds the free-form sizes a model accepts. A zero field is not
// checked.
type SizeRule struct {
	// MinEdge and MaxEdge bound both the width and the height, in pixels.
	MinEdge, MaxEdge int

	// Multiple is the number that both edges must be a multiple of.
	Multiple int

	// MinPixels and MaxPixels bound width × height.
	MinPixels, MaxPixels int

	// MaxAspectRatio bounds the long edge divided by the short edge, such
	// as 3 for at most 3:1.
	MaxAspectRatio float64
}

// Price is an amount in US dollars that may be unknown. The zero value is an
// unknown price: costs computed from it have Cost.Known false, never zero.
type Price struct {
	USD   float64
	Known bool
}

// USD returns a known price of usd US dollars.
func USD(usd float64) Price { return Price{USD: usd, Known: true} }

// Pricing is a model's price list. Prices that the service has not published
// are left at the zero Price, which is unknown.
type Pricing struct {
	// TextInput, CachedTextInput, ImageInput, CachedImageInput and
	// ImageOutput are prices per 1M tokens.
	TextInput        Price
	CachedTextInput  Price
	ImageInput       Price
	CachedImageInput Price
	ImageOutput      Price

	// PerImage is the price of one image by quality and then size, for
	// models billed per image such as DALL·E. When it is not nil the token
	// prices are ignored.
	PerImage map[string]map[string]Price
}

// RetiredError reports a request for a model that the service has shut down.
// It matches ErrModelRetired and ErrNotFound with errors.Is, so the Client
// classifies it as ClassNotFound.
type RetiredError struct {
	// Model is the requested name and Family the catalog entry it resolved to.
	Model  string
	Family string
	// Retired is the shutdown date.
	Retired time.Time
	// Replacements are the recommended models, possibly empty.
	Replacements []string
}

// Error names the model, its shutdown date and the replacements.
func (e *RetiredError) Error() string {
	if e == nil {
		return "imagegen: <nil error>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "imagegen: model %s was shut down on %s", e.Model, e.Retired.UTC().Format(time.DateOnly))
	if len(e.Replacements) > 0 {
		fmt.Fprintf(&b, "; use %s instead", strings.Join(e.Replacements, " or "))
	} else {
		b.WriteString("; choose a current model")
	}
	b.WriteString(" (imagegen.WithRetiredModels allows it for endpoints that still serve it)")
	return b.String()
}

// Is reports whether target is ErrModelRetired or ErrNotFound.
func (e *RetiredError) Is(target error) bool {
	return target == ErrModelRetired || target == ErrNotFound
}

// NewCatalog returns a catalog of the given models. It returns an error when
// a model is malformed (no name, a bad size, a negative price) or when two
// models claim the same name or alias.
func NewCatalog(models ...Model) (*Catalog, error) {
	var empty *Catalog
	return empty.With(models...)
}

// With returns a copy of c with models added, or replacing the entries of
// the same Name; c itself is unchanged. Later models in the list replace
// earlier ones of the same Name. It returns an error, and no catalog, when a
// model is malformed or a name or alias already belongs to another model.
func (c *Catalog) With(models ...Model) (*Catalog, error) {
	next := &Catalog{
		models: make(map[string]*Model, c.len()+len(models)),
		index:  make(map[string]string, c.len()*2+len(models)),
	}
	if c != nil {
		maps.Copy(next.models, c.models)
		maps.Copy(next.index, c.index)
	}

	for i := range models {
		m := models[i].clone()
		if err := checkCatalogModel(&m); err != nil {
			return nil, err
		}

		// A replaced entry gives up its aliases first.
		if _, ok := next.models[m.Name]; ok {
			maps.DeleteFunc(next.index, func(_, name string) bool { return name == m.Name })
		}
		for _, key := range append([]string{m.Name}, m.Aliases...) {
			if owner, ok := next.index[key]; ok && owner != m.Name {
				return nil, fmt.Errorf("imagegen: catalog model %q: name %q already belongs to model %q; remove it from one of them", m.Name, key, owner)
			}
			next.index[key] = m.Name
		}
		next.models[m.Name] = &m
	}
	return next, nil
}

func (c *Catalog) len() int {
	if c == nil {
		return 0
	}
	return len(c.models)
}

// Lookup returns a copy of the entry for name. It matches Name and Aliases
// exactly, then resolves a dated snapshot such as "gpt-image-2-2026-04-21"
// to the entry of "gpt-image-2" when the snapshot is not listed.
func (c *Catalog) Lookup(name string) (Model, bool) {
	m := c.resolve(name)
	if m == nil {
		return Model{}, false
	}
	return m.clone(), true
}

// Models returns copies of all entries, sorted by Name.
func (c *Catalog) Models() []Model {
	if c == nil {
		return nil
	}
	names := slices.Sorted(maps.Keys(c.models))
	out := make([]Model, 0, len(names))
	for _, name := range names {
		out = append(out, c.models[name].clone())
	}
	return out
}

// resolve returns the shared, read-only entry for name, or nil.
func (c *Catalog) resolve(name string) *Model {
	if c == nil || name == "" {
		return nil
	}
	if key, ok := c.index[name]; ok {
		return c.models[key]
	}
	if base, ok := trimSnapshotDate(name); ok {
		if key, ok := c.index[base]; ok {
			return c.models[key]
		}
	}
	return nil
}

// trimSnapshotDate returns name without a trailing "-YYYY-MM-DD".
func trimSnapshotDate(name string) (string, bool) {
	const suffix = len("-2006-01-02")
	if len(name) <= suffix || name[len(name)-suffix] != '-' {
		return "", false
	}
	date := name[len(name)-suffix+1:]
	if _, err := time.Parse(time.DateOnly, date); err != nil {
		return "", false
	}
	return name[:len(name)-suffix], true
}

// MaxImagesPerCall returns how many images one call to model may ask for:
// the model's MaxN, or MaxImagesPerRequest for unknown models and a zero
// MaxN. Pass it to SplitN.
func (c *Catalog) MaxImagesPerCall(model string) int {
	if m := c.resolve(model); m != nil && m.MaxN > 0 {
		return min(m.MaxN, MaxImagesPerRequest)
	}
	return MaxImagesPerRequest
}

// CheckRetired returns a *RetiredError when model resolves to an entry whose
// Retired time is at or before now, and nil for available and unknown models.
// Gateways and Azure deployments may still serve retired models, so the
// Client applies this check only to OpenAI's own endpoint.
func (c *Catalog) CheckRetired(model string, now time.Time) error {
	m := c.resolve(model)
	if m == nil || m.Retired.IsZero() || now.Before(m.Retired) {
		return nil
	}
	return &RetiredError{
		Model:        model,
		Family:       m.Name,
		Retired:      m.Retired,
		Replacements: slices.Clone(m.Replacements),
	}
}

// clone returns a deep copy of m, keeping nil and empty lists apart.
func (m *Model) clone() Model {
	out := *m
	out.Aliases = slices.Clone(m.Aliases)
	out.Sizes = slices.Clone(m.Sizes)
	if m.FlexibleSize != nil {
		rule := *m.FlexibleSize
		out.FlexibleSize = &rule
	}
	out.Qualities = slices.Clone(m.Qualities)
	out.OutputFormats = slices.Clone(m.OutputFormats)
	out.Backgrounds = slices.Clone(m.Backgrounds)
	out.Moderations = slices.Clone(m.Moderations)
	out.Styles = slices.Clone(m.Styles)
	out.Pricing.PerImage = cloneCatalogTable(m.Pricing.PerImage)
	out.OutputTokens = cloneCatalogTable(m.OutputTokens)
	out.Presets = maps.Clone(m.Presets)
	out.Replacements = slices.Clone(m.Replacements)
	return out
}

func cloneCatalogTable[V any](in map[string]map[string]V) map[string]map[string]V {
	if in == nil {
		return nil
	}
	out := make(map[string]map[string]V, len(in))
	for k, inner := range in {
		out[k] = maps.Clone(inner)
	}
	return out
}

// checkCatalogModel reports the first malformed field of m.
func checkCatalogModel(m *Model) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("imagegen: catalog model %q: "+format, append([]any{m.Name}, args...)...)
	}

	if m.Name == "" || strings.TrimSpace(m.Name) != m.Name || strings.ContainsAny(m.Name, " \t\r\n") {
		return bad("name must be non-empty and contain no spaces")
	}
	for _, alias := range m.Aliases {
		if alias == "" || strings.ContainsAny(alias, " \t\r\n") {
			return bad("alias %q must be non-empty and contain no spaces", alias)
		}
	}
	if m.MaxN < 0 {
		return bad("MaxN is %d; use 0 for the default or a positive number", m.MaxN)
	}
	for _, size := range append(slices.Clone(m.Sizes), m.DefaultSize) {
		if size == "" || size == "auto" {
			continue
		}
		if _, _, ok := parseSizeWxH(size); !ok {
			return bad("size %q is not \"auto\" or WIDTHxHEIGHT", size)
		}
	}
	if err := m.FlexibleSize.check(); err != nil {
		return bad("%v", err)
	}

	prices := map[string]Price{
		"TextInput":        m.Pricing.TextInput,
		"CachedTextInput":  m.Pricing.CachedTextInput,
		"ImageInput":       m.Pricing.ImageInput,
		"CachedImageInput": m.Pricing.CachedImageInput,
		"ImageOutput":      m.Pricing.ImageOutput,
	}
	for quality, bySize := range m.Pricing.PerImage {
		for size, price := range bySize {
			prices["PerImage["+quality+"]["+size+"]"] = price
		}
	}
	for name, price := range prices {
		if price.Known && (price.USD < 0 || math.IsNaN(price.USD) || math.IsInf(price.USD, 0)) {
			return bad("price %s is %v; use a finite, non-negative amount", name, price.USD)
		}
	}

	for quality, bySize := range m.OutputTokens {
		for size, tokens := range bySize {
			if _, _, ok := parseSizeWxH(size); !ok || tokens < 0 {
				return bad("OutputTokens[%q][%q] = %d needs a WIDTHxHEIGHT size and a non-negative count", quality, size, tokens)
			}
		}
	}
	for preset, setting := range m.Presets {
		if setting.Pixels < 0 {
			return bad("preset %q has %d pixels; use a positive number, or 0 for the default", preset, setting.Pixels)
		}
	}
	return nil
}

// check reports contradictory bounds. A nil rule is valid.
func (r *SizeRule) check() error {
	if r == nil {
		return nil
	}
	switch {
	case r.MinEdge < 0 || r.MaxEdge < 0 || r.Multiple < 0 || r.MinPixels < 0 || r.MaxPixels < 0:
		return errors.New("FlexibleSize bounds must not be negative")
	case r.MaxEdge > 0 && r.MinEdge > r.MaxEdge:
		return fmt.Errorf("FlexibleSize MinEdge %d is above MaxEdge %d", r.MinEdge, r.MaxEdge)
	case r.MaxPixels > 0 && r.MinPixels > r.MaxPixels:
		return fmt.Errorf("FlexibleSize MinPixels %d is above MaxPixels %d", r.MinPixels, r.MaxPixels)
	case r.MaxAspectRatio != 0 && !(r.MaxAspectRatio >= 1) || math.IsInf(r.MaxAspectRatio, 0):
		return fmt.Errorf("FlexibleSize MaxAspectRatio %v must be 0 or a finite number of at least 1", r.MaxAspectRatio)
	}
	return nil
}

// violation returns why width×height breaks r, or "" when it fits.
func (r *SizeRule) violation(width, height int) string {
	long, short := max(width, height), min(width, height)
	pixels := int64(width) * int64(height)
	switch {
	case r.MinEdge > 0 && short < r.MinEdge:
		return fmt.Sprintf("the %d-pixel edge is below the minimum of %d", short, r.MinEdge)
	case r.MaxEdge > 0 && long > r.MaxEdge:
		return fmt.Sprintf("the %d-pixel edge is above the maximum of %d", long, r.MaxEdge)
	case r.Multiple > 1 && (width%r.Multiple != 0 || height%r.Multiple != 0):
		return fmt.Sprintf("both edges must be multiples of %d", r.Multiple)
	case r.MinPixels > 0 && pixels < int64(r.MinPixels):
		return fmt.Sprintf("%d pixels is below the minimum of %d", pixels, r.MinPixels)
	case r.MaxPixels > 0 && pixels > int64(r.MaxPixels):
		return fmt.Sprintf("%d pixels is above the maximum of %d", pixels, r.MaxPixels)
	case r.MaxAspectRatio > 0 && float64(long) > r.MaxAspectRatio*float64(short):
		return fmt.Sprintf("the aspect ratio %.2f:1 is above the maximum of %g:1", float64(long)/float64(short), r.MaxAspectRatio)
	}
	return ""
}

// describe lists r's bounds for error messages.
func (r *SizeRule) describe() string {
	var parts []string
	switch {
	case r.MinEdge > 0 && r.MaxEdge > 0:
		parts = append(parts, fmt.Sprintf("edges from %d to %d pixels", r.MinEdge, r.MaxEdge))
	case r.MinEdge > 0:
		parts = append(parts, fmt.Sprintf("edges of at least %d pixels", r.MinEdge))
	case r.MaxEdge > 0:
		parts = append(parts, fmt.Sprintf("edges of at most %d pixels", r.MaxEdge))
	}
	if r.Multiple > 1 {
		parts = append(parts, fmt.Sprintf("both edges multiples of %d", r.Multiple))
	}
	if r.MinPixels > 0 {
		parts = append(parts, fmt.Sprintf("at least %d pixels", r.MinPixels))
	}
	if r.MaxPixels > 0 {
		parts = append(parts, fmt.Sprintf("at most %d pixels", r.MaxPixels))
	}
	if r.MaxAspectRatio > 0 {
		parts = append(parts, fmt.Sprintf("an aspect ratio of at most %g:1", r.MaxAspectRatio))
	}
	if len(parts) == 0 {
		return "any WIDTHxHEIGHT"
	}
	return "WIDTHxHEIGHT with " + strings.Join(parts, ", ")
}

// parseSizeWxH parses "WIDTHxHEIGHT" with positive decimal edges.
func parseSizeWxH(size string) (width, height int, ok bool) {
	w, h, found := strings.Cut(size, "x")
	if !found {
		return 0, 0, false
	}
	width, okW := parseSizeEdge(w)
	height, okH := parseSizeEdge(h)
	return width, height, okW && okH
}

// parseSizeEdge parses digits only (no sign, no spaces) up to 1e9.
func parseSizeEdge(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, false
		}
		n = n*10 + int(r-'0')
	}
	return n, n > 0
}
