package imagegen

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/imagegen-go/imagegen/provider"
)

func TestLearnedEstimatesObserve(t *testing.T) {
	var l learnedEstimates
	req := &provider.Request{Model: "m", Quality: "", Size: "auto"}

	l.observe(req, nil, 1)
	l.observe(req, &provider.Usage{OutputTokens: 100}, 0)
	_, ok := l.outputTokens(newLearnedKey("m", "auto", "auto"))
	assert.False(t, ok, "no usage or no images teaches nothing")

	l.observe(req, &provider.Usage{OutputTokens: 101}, 2)
	tokens, ok := l.outputTokens(newLearnedKey("m", "auto", ""))
	assert.True(t, ok, `"" and "auto" are the same key`)
	assert.Equal(t, int64(51), tokens, "per image, rounded up")
}

func TestLearnedEstimatesBounded(t *testing.T) {
	var l learnedEstimates
	for i := range maxLearnedEstimates + 10 {
		l.observe(&provider.Request{Model: fmt.Sprint("m", i)}, &provider.Usage{OutputTokens: 1}, 1)
	}
	assert.Len(t, l.tokens, maxLearnedEstimates)

	// A known key is still updated at the bound.
	l.observe(&provider.Request{Model: "m0"}, &provider.Usage{OutputTokens: 7}, 1)
	tokens, _ := l.outputTokens(newLearnedKey("m0", "", ""))
	assert.Equal(t, int64(7), tokens)
}

func TestLearnedEstimatesKeepLargest(t *testing.T) {
	var l learnedEstimates
	req := &provider.Request{Model: "m", Quality: "auto"}

	l.observe(req, &provider.Usage{OutputTokens: 6000}, 1)
	l.observe(req, &provider.Usage{OutputTokens: 200}, 1)

	tokens, _ := l.outputTokens(newLearnedKey("m", "auto", ""))
	assert.Equal(t, int64(6000), tokens, "a cheap auto answer does not shrink the estimate")
}
