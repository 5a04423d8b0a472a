package imagegen

import (
	"fmt"
	"sync"

	"github.com/imagegen-go/imagegen/provider"
)

// maxLearnedEstimates bounds the model, quality and size combinations whose
// reported output tokens a Client remembers.
const maxLearnedEstimates = 1024

// learnedEstimates remembers the image output tokens per image that services
// reported for each model, quality and size. OpenAI's published token tables
// list one figure per quality and size, so output tokens depend on those
// three alone. One response is then enough to estimate the next call of the
// same kind when the catalog has no token table for the model. It is safe
// for concurrent use.
type learnedEstimates struct {
	mu     sync.Mutex
	tokens map[learnedKey]int64
}

type learnedKey struct {
	model, quality, size string
}

func newLearnedKey(model, quality, size string) learnedKey {
	if quality == "" {
		quality = "auto"
	}
	if size == "" {
		size = "auto"
	}
	return learnedKey{model: model, quality: quality, size: size}
}

// observe records the output tokens per image of a successful response, the
// largest seen for the request's model, quality and size.
func (l *learnedEstimates) observe(req *provider.Request, usage *provider.Usage, images int) {
	if usage == nil || usage.OutputTokens <= 0 || images <= 0 {
		return
	}
	key := newLearnedKey(req.Model, req.Quality, req.Size)
	perImage := (usage.OutputTokens + int64(images) - 1) / int64(images)

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tokens == nil {
		l.tokens = make(map[learnedKey]int64)
	}
	old, ok := l.tokens[key]
	if !ok && len(l.tokens) >= maxLearnedEstimates {
		return
	}
	// Keep the largest figure: for "auto", where the service picks quality
	// or size, a cheap response must not shrink the next reservation.
	l.tokens[key] = max(old, perImage)
}

func (l *learnedEstimates) outputTokens(key learnedKey) (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	tokens, ok := l.tokens[key]
	return tokens, ok
}

// learnsEstimates reports whether the Client learns estimates for model:
// only for models with an image output price and no token table, the only
// ones that estimate uses them for.
func (c *Client) learnsEstimates(model string) bool {
	m := c.catalog.resolve(model)
	return m != nil && m.Pricing.ImageOutput.Known && m.OutputTokens == nil
}

// estimate returns the catalog's estimate of req's cost. When the catalog
// has none but lists the model's image output price, it estimates from the
// output tokens that the service last reported for the same model, quality
// and size. Either way the result is marked as an estimate.
func (c *Client) estimate(req *provider.Request) Cost {
	est := c.catalog.EstimateCost(req)
	if est.Known {
		return est
	}
	m := c.catalog.resolve(req.Model)
	if m == nil || !m.Pricing.ImageOutput.Known {
		return est
	}
	key := newLearnedKey(req.Model, req.Quality, req.Size)
	tokens, ok := c.learned.outputTokens(key)
	if !ok {
		return est
	}

	var sum costSum
	sum.addTokens("image output (as last reported)", tokens*int64(req.N), m.Pricing.ImageOutput)
	if m.Pricing.TextInput.Known {
		sum.addTokens("text input (estimated)", estimatePromptTokens(req.Prompt), m.Pricing.TextInput)
	}
	cost := sum.cost(req.N)
	cost.Estimated = true
	cost.Detail = fmt.Sprintf("%s, from the usage reported for %s at quality %s and size %s",
		cost.Detail, key.model, key.quality, key.size)
	return cost
}
