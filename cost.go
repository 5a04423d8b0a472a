package imagegen

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/imagegen-go/imagegen/provider"
)

// ErrCostUnknown matches errors for requests whose cost cannot be estimated
// where a spending cap needs it.
var ErrCostUnknown = errors.New("imagegen: cost unknown")

// Cost is the actual or estimated price of a request in US dollars.
//
// The zero value is an unknown cost. A cost is unknown when the model is not
// in the catalog or a price it needs has not been published. USD is then
// meaningless and must not be read as free.
type Cost struct {
	// USD is the amount in US dollars, meaningful only when Known is true.
	USD float64
	// Known reports whether every price the amount needs was available.
	Known bool
	// Estimated reports that USD is a prediction from catalog tables, not
	// the service's reported usage.
	Estimated bool
	// Images is the number of images the cost covers.
	Images int
	// Detail explains the amount, such as
	// "image output 272 tokens at $40/1M", or why it is unknown.
	Detail string
}

// Add returns the sum of c and o. The sum is known only when both are, and
// estimated when either is. Start a sum from Cost{Known: true}, because the
// zero Cost is unknown.
func (c Cost) Add(o Cost) Cost {
	return Cost{
		USD:       c.USD + o.USD,
		Known:     c.Known && o.Known,
		Estimated: c.Estimated || o.Estimated,
		Images:    c.Images + o.Images,
		Detail:    catalogJoinNonEmpty("; ", c.Detail, o.Detail),
	}
}

// String returns the amount such as "$0.0109", with " (estimated)" for
// estimates, or "unknown".
func (c Cost) String() string {
	if !c.Known {
		return "unknown"
	}
	if c.Estimated {
		return costFormatUSD(c.USD) + " (estimated)"
	}
	return costFormatUSD(c.USD)
}

// CostFromUsage returns the cost of the token usage u for a token-priced
// model: text input, image input and image output tokens each at their own
// price per 1M tokens.
//
// Usage does not report cached tokens, so all input is charged at the
// uncached price. Input tokens that u does not split into text and image are
// charged at the higher of the two prices and the cost is marked Estimated.
// The cost is unknown for a nil u, an unknown model, a per-image priced model
// and a token class with tokens but no published price.
func (c *Catalog) CostFromUsage(model string, u *provider.Usage) Cost {
	m := c.resolve(model)
	switch {
	case m == nil:
		return Cost{Detail: fmt.Sprintf("model %s is not in the catalog", model)}
	case m.Pricing.PerImage != nil:
		return Cost{Detail: fmt.Sprintf("%s is billed per image, not per token", m.Name)}
	case u == nil:
		return Cost{Detail: "the service reported no usage"}
	}
	return m.usageCost(u)
}

// ResponseCost returns the cost of a successful call: for per-image priced
// models the list price of the images returned, otherwise the reported token
// usage, and without usage an estimate for the images returned. It prefers
// the size, quality and model that the response reports over the request's.
func (c *Catalog) ResponseCost(req *provider.Request, resp *provider.Response) Cost {
	if req == nil || resp == nil {
		return Cost{Detail: "no request or response to price"}
	}
	m := c.resolve(resp.Model)
	if m == nil {
		m = c.resolve(req.Model)
	}
	if m == nil {
		return Cost{Images: len(resp.Images), Detail: fmt.Sprintf("model %s is not in the catalog", req.Model)}
	}

	produced := *req
	produced.N = len(resp.Images)
	if resp.Size != "" {
		produced.Size = resp.Size
	}
	if resp.Quality != "" {
		produced.Quality = resp.Quality
	}

	switch {
	case m.Pricing.PerImage != nil:
		cost := m.perImageCost(produced.Quality, produced.Size, produced.N)
		cost.Estimated = false
		return cost
	case resp.Usage != nil:
		cost := m.usageCost(resp.Usage)
		cost.Images = produced.N
		return cost
	}
	cost := m.estimateCost(&produced)
	cost.Detail = catalogJoinNonEmpty("; ", "the service reported no usage", cost.Detail)
	return cost
}

// EstimateCost predicts what req will cost before it is sent: for per-image
// priced models the list price of N images, otherwise the output tokens from
// the model's OutputTokens table plus the prompt at about one token per three
// bytes. An empty or "auto" size or quality is priced at the most expensive
// one. The result has Estimated set, and is unknown for models without the
// prices or table it needs.
//
// NOTE: input images of edit requests are not included, so an edit's
// estimate is low; the settled cost from usage includes them.
func (c *Catalog) EstimateCost(req *provider.Request) Cost {
	if req == nil {
		return Cost{Detail: "no request to price"}
	}
	m := c.resolve(req.Model)
	if m == nil {
		return Cost{Images: max(req.N, 1), Detail: fmt.Sprintf("model %s is not in the catalog", req.Model)}
	}
	produced := *req
	produced.N = max(req.N, 1)
	return m.estimateCost(&produced)
}

// estimateCost predicts the cost of req.N images of req's quality and size.
func (m *Model) estimateCost(req *provider.Request) Cost {
	if m.Pricing.PerImage != nil {
		return m.perImageCost(req.Quality, req.Size, req.N)
	}

	perImage := m.imageOutputEstimate(req.Quality, req.Size)
	if !perImage.Known {
		perImage.Images = req.N
		return perImage.Cost
	}
	var total costSum
	total.addTokens("image output", perImage.tokens*int64(req.N), m.Pricing.ImageOutput)
	total.addTokens("text input (estimated)", estimatePromptTokens(req.Prompt), m.Pricing.TextInput)
	cost := total.cost(req.N)
	cost.Estimated = true
	return cost
}

// estimatePromptTokens returns about one token per three bytes, above the
// usual four characters per token of English text, so estimates err high.
func estimatePromptTokens(prompt string) int64 {
	return int64(len(prompt)+2) / 3
}

// tokenEstimate is the estimated output of one image.
type tokenEstimate struct {
	Cost
	tokens int64
}

// imageOutputEstimate returns the estimated output tokens and cost of one
// image of the given quality and size.
func (m *Model) imageOutputEstimate(quality, size string) tokenEstimate {
	if m.OutputTokens == nil {
		return tokenEstimate{Cost: Cost{Detail: fmt.Sprintf("%s has no output token table for estimates", m.Name)}}
	}
	if !m.Pricing.ImageOutput.Known {
		return tokenEstimate{Cost: Cost{Detail: fmt.Sprintf("%s has no published image output price", m.Name)}}
	}

	var best int64 = -1
	for _, q := range expandChoice(quality, m.DefaultQuality, slices.Collect(maps.Keys(m.OutputTokens))) {
		bySize, ok := m.OutputTokens[q]
		if !ok {
			return tokenEstimate{Cost: Cost{Detail: fmt.Sprintf("%s has no output tokens for quality %s", m.Name, q)}}
		}
		for _, s := range expandChoice(size, m.DefaultSize, slices.Collect(maps.Keys(bySize))) {
			tokens, ok := outputTokensForSize(bySize, s)
			if !ok {
				return tokenEstimate{Cost: Cost{Detail: fmt.Sprintf("%s has no output tokens for size %s", m.Name, s)}}
			}
			best = max(best, tokens)
		}
	}
	if best < 0 {
		return tokenEstimate{Cost: Cost{Detail: fmt.Sprintf("%s has no output tokens for quality %s and size %s", m.Name, quality, size)}}
	}

	var single costSum
	single.addTokens("image output", best, m.Pricing.ImageOutput)
	cost := single.cost(1)
	cost.Estimated = true
	return tokenEstimate{Cost: cost, tokens: best}
}

// outputTokensForSize returns the table entry for size, or one scaled by pixel
// count from the 1024x1024 entry (or the first listed) when size is missing.
func outputTokensForSize(bySize map[string]int64, size string) (int64, bool) {
	if tokens, ok := bySize[size]; ok {
		return tokens, true
	}
	width, height, ok := parseSizeWxH(size)
	if !ok || len(bySize) == 0 {
		return 0, false
	}
	reference := "1024x1024"
	if _, ok := bySize[reference]; !ok {
		reference = slices.Sorted(maps.Keys(bySize))[0]
	}
	refWidth, refHeight, _ := parseSizeWxH(reference)
	scaled := float64(bySize[reference]) * float64(width) * float64(height) / float64(refWidth*refHeight)
	return int64(math.Ceil(scaled)), true
}

// perImageCost returns the list price of n images, the most expensive one for
// an empty or "auto" quality or size without a model default.
func (m *Model) perImageCost(quality, size string, n int) Cost {
	best := Price{}
	label := ""
	for _, q := range expandChoice(quality, m.DefaultQuality, slices.Collect(maps.Keys(m.Pricing.PerImage))) {
		bySize := m.Pricing.PerImage[q]
		for _, s := range expandChoice(size, m.DefaultSize, slices.Collect(maps.Keys(bySize))) {
			price, ok := bySize[s]
			if !ok || !price.Known {
				return Cost{Images: n, Detail: fmt.Sprintf("%s has no price for quality %s at size %s", m.Name, q, s)}
			}
			if !best.Known || price.USD > best.USD {
				best, label = price, q+" "+s
			}
		}
	}
	if !best.Known {
		return Cost{Images: n, Detail: fmt.Sprintf("%s has no price for quality %q at size %q", m.Name, quality, size)}
	}
	return Cost{
		USD:       best.USD * float64(n),
		Known:     true,
		Estimated: true,
		Images:    n,
		Detail:    fmt.Sprintf("%d × %s at %s per image", n, label, costFormatUSD(best.USD)),
	}
}

// expandChoice returns the values a request's quality or size may mean: the
// value itself, the model default for an empty value, or every listed value,
// sorted, for "auto" and for an empty value without a default.
func expandChoice(value, modelDefault string, listed []string) []string {
	if value == "" {
		value = modelDefault
	}
	if value == "" || value == "auto" {
		slices.Sort(listed)
		return listed
	}
	return []string{value}
}

// usageCost prices reported token usage.
func (m *Model) usageCost(u *provider.Usage) Cost {
	var total costSum
	p := m.Pricing

	text, image := u.InputTextTokens, u.InputImageTokens
	if unsplit := u.InputTokens - text - image; unsplit > 0 {
		price := p.TextInput
		if !price.Known || p.ImageInput.Known && p.ImageInput.USD > price.USD {
			price = p.ImageInput
		}
		total.addTokens("input not split into text and image", unsplit, price)
		total.estimated = true
	}
	total.addTokens("text input", text, p.TextInput)
	total.addTokens("image input", image, p.ImageInput)

	output := u.OutputTokens
	if output == 0 && u.TotalTokens > u.InputTokens {
		output = u.TotalTokens - u.InputTokens
	}
	total.addTokens("image output", output, p.ImageOutput)

	cost := total.cost(0)
	if cost.Detail == "" {
		cost.Detail = "no tokens reported"
	}
	return cost
}

// costSum adds token charges, recording unknown prices.
type costSum struct {
	usd       float64
	unknown   bool
	estimated bool
	detail    []byte // the parts joined by " + ", built without fmt for speed
}

func (s *costSum) addTokens(label string, tokens int64, price Price) {
	if tokens <= 0 {
		return
	}
	if s.detail == nil {
		s.detail = make([]byte, 0, 128)
	} else {
		s.detail = append(s.detail, " + "...)
	}
	s.detail = append(s.detail, label...)
	s.detail = append(s.detail, ' ')
	s.detail = strconv.AppendInt(s.detail, tokens, 10)
	if !price.Known {
		s.unknown = true
		s.detail = append(s.detail, " tokens at an unpublished price"...)
		return
	}
	s.usd += float64(tokens) * price.USD / 1e6
	s.detail = append(s.detail, " tokens at "...)
	s.detail = appendUSD(s.detail, price.USD)
	s.detail = append(s.detail, "/1M"...)
}

func (s *costSum) cost(images int) Cost {
	cost := Cost{
		Known:     !s.unknown,
		Estimated: s.estimated,
		Images:    images,
		Detail:    string(s.detail),
	}
	if cost.Known {
		cost.USD = s.usd
	}
	return cost
}

// costFormatUSD formats an amount with up to four decimals, such as "$0.0109" or
// "$40".
func costFormatUSD(usd float64) string {
	return string(appendUSD(nil, usd))
}

// appendUSD appends the costFormatUSD form of usd to b.
func appendUSD(b []byte, usd float64) []byte {
	b = append(b, '$')
	start := len(b)
	b = strconv.AppendFloat(b, usd, 'f', 4, 64)
	for len(b) > start && b[len(b)-1] == '0' {
		b = b[:len(b)-1]
	}
	if len(b) > start && b[len(b)-1] == '.' {
		b = b[:len(b)-1]
	}
	return b
}

func catalogJoinNonEmpty(sep string, parts ...string) string {
	return strings.Join(slices.DeleteFunc(parts, func(s string) bool { return s == "" }), sep)
}
