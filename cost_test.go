package imagegen

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagegen-go/imagegen/provider"
)

// TestGPTImage1TokenTableMatchesPublishedPrices checks that the output token
// table at $40 per 1M tokens reproduces OpenAI's published per-image prices.
func TestGPTImage1TokenTableMatchesPublishedPrices(t *testing.T) {
	c := DefaultCatalog()
	published := map[string]map[string]float64{
		"low":    {"1024x1024": 0.011, "1024x1536": 0.016, "1536x1024": 0.016},
		"medium": {"1024x1024": 0.042, "1024x1536": 0.063, "1536x1024": 0.063},
		"high":   {"1024x1024": 0.167, "1024x1536": 0.25, "1536x1024": 0.25},
	}
	model, _ := c.Lookup("gpt-image-1")
	for quality, bySize := range published {
		for size, price := range bySize {
			t.Run(quality+" "+size, func(t *testing.T) {
				cost := c.EstimateCost(&provider.Request{Model: "gpt-image-1", Quality: quality, Size: size})
				require.True(t, cost.Known, cost.Detail)
				assert.True(t, cost.Estimated)
				assert.InDelta(t, price, cost.USD, 0.005, "within half a cent of the published price")
				exact := float64(model.OutputTokens[quality][size]) * 40 / 1e6
				assert.InDelta(t, exact, cost.USD, 1e-12)
			})
		}
	}
}

func TestCatalogEstimateCost(t *testing.T) {
	c := DefaultCatalog()
	tests := []struct {
		name       string
		req        provider.Request
		want       float64
		wantKnown  bool
		wantImages int
		detail     string
	}{
		{"gpt-image-1 low square", provider.Request{Model: "gpt-image-1", Quality: "low", Size: "1024x1024"}, 0.01088, true, 1, "272 tokens"},
		{"n multiplies output", provider.Request{Model: "gpt-image-1", Quality: "low", Size: "1024x1024", N: 3}, 3 * 0.01088, true, 3, "816 tokens"},
		{"prompt adds text input", provider.Request{Model: "gpt-image-1", Quality: "low", Size: "1024x1024", Prompt: strings.Repeat("a", 300)}, 0.01088 + 100*5/1e6, true, 1, "text input"},
		{"auto prices the most expensive", provider.Request{Model: "gpt-image-1", Quality: "auto", Size: "auto"}, 6240 * 40 / 1e6, true, 1, "6240 tokens"},
		{"empty prices the most expensive", provider.Request{Model: "gpt-image-1"}, 6240 * 40 / 1e6, true, 1, ""},
		{"unlisted size scales by pixels", provider.Request{Model: "gpt-image-1", Quality: "medium", Size: "2048x2048"}, 4 * 1056 * 40 / 1e6, true, 1, "4224 tokens"},
		{"snapshot name", provider.Request{Model: "gpt-image-1-2025-04-15", Quality: "high", Size: "1024x1024"}, 0.1664, true, 1, ""},
		{"dall-e-3 defaults", provider.Request{Model: "dall-e-3"}, 0.04, true, 1, "standard 1024x1024"},
		{"dall-e-3 hd wide", provider.Request{Model: "dall-e-3", Quality: "hd", Size: "1792x1024", N: 2}, 0.24, true, 2, ""},
		{"dall-e-2 512", provider.Request{Model: "dall-e-2", Size: "512x512"}, 0.018, true, 1, ""},
		{"dall-e-2 unpriced size", provider.Request{Model: "dall-e-2", Size: "2048x2048"}, 0, false, 1, "no price"},
		{"gpt-image-1 unknown quality", provider.Request{Model: "gpt-image-1", Quality: "xhigh", Size: "1024x1024"}, 0, false, 1, "xhigh"},
		{"gpt-image-2 unpublished", provider.Request{Model: "gpt-image-2", Quality: "low"}, 0, false, 1, "no output token table"},
		{"gpt-image-2.6-sunburst no table", provider.Request{Model: "gpt-image-2.6-sunburst"}, 0, false, 1, "no output token table"},
		{"gpt-image-1-mini no table", provider.Request{Model: "gpt-image-1-mini", N: 2}, 0, false, 2, ""},
		{"unknown model", provider.Request{Model: "flux-dev"}, 0, false, 1, "not in the catalog"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cost := c.EstimateCost(&tt.req)
			require.Equal(t, tt.wantKnown, cost.Known, cost.Detail)
			assert.Equal(t, tt.wantImages, cost.Images)
			assert.Contains(t, cost.Detail, tt.detail)
			if tt.wantKnown {
				assert.True(t, cost.Estimated)
				assert.InDelta(t, tt.want, cost.USD, 1e-9)
			} else {
				assert.Zero(t, cost.USD, "an unknown cost must not carry an amount")
			}
		})
	}
	assert.False(t, c.EstimateCost(nil).Known)
}

func TestCatalogCostFromUsage(t *testing.T) {
	c := DefaultCatalog()
	tests := []struct {
		name          string
		model         string
		usage         *provider.Usage
		want          float64
		wantKnown     bool
		wantEstimated bool
		detail        string
	}{
		{"text input", "gpt-image-1", &provider.Usage{InputTokens: 1000, InputTextTokens: 1000}, 0.005, true, false, "text input 1000 tokens at $5/1M"},
		{"image input", "gpt-image-1", &provider.Usage{InputTokens: 1000, InputImageTokens: 1000}, 0.01, true, false, "image input 1000 tokens at $10/1M"},
		{"image output", "gpt-image-1", &provider.Usage{OutputTokens: 1000}, 0.04, true, false, "image output 1000 tokens at $40/1M"},
		{"all classes", "gpt-image-1", &provider.Usage{InputTokens: 300, InputTextTokens: 100, InputImageTokens: 200, OutputTokens: 4160, TotalTokens: 4460},
			100*5/1e6 + 200*10/1e6 + 4160*40/1e6, true, false, ""},
		{"2.6-sunburst text", "gpt-image-2.6-sunburst", &provider.Usage{InputTokens: 1000, InputTextTokens: 1000}, 0.005, true, false, ""},
		{"2.6-sunburst image input", "gpt-image-2.6-sunburst", &provider.Usage{InputTokens: 1000, InputImageTokens: 1000}, 0.008, true, false, ""},
		{"2.6-sunburst output", "gpt-image-2.6-sunburst", &provider.Usage{OutputTokens: 1000}, 0.03, true, false, ""},
		{"mini all classes", "gpt-image-1-mini", &provider.Usage{InputTokens: 2000, InputTextTokens: 1000, InputImageTokens: 1000, OutputTokens: 1000}, 0.002 + 0.0025 + 0.008, true, false, ""},
		{"unsplit input at higher price", "gpt-image-1", &provider.Usage{InputTokens: 1000, OutputTokens: 1000}, 0.01 + 0.04, true, true, "not split"},
		{"output from total", "gpt-image-1", &provider.Usage{InputTokens: 100, InputTextTokens: 100, TotalTokens: 1100}, 0.0005 + 0.04, true, false, "image output 1000"},
		{"no tokens", "gpt-image-1", &provider.Usage{}, 0, true, false, "no tokens"},
		{"unpublished prices", "gpt-image-2", &provider.Usage{InputTokens: 10, InputTextTokens: 10, OutputTokens: 1000}, 0, false, false, "unpublished"},
		{"snapshot resolves", "gpt-image-2-2026-04-21", &provider.Usage{OutputTokens: 1}, 0, false, false, ""},
		{"nil usage", "gpt-image-1", nil, 0, false, false, "no usage"},
		{"per-image model", "dall-e-3", &provider.Usage{OutputTokens: 10}, 0, false, false, "per image"},
		{"unknown model", "flux-dev", &provider.Usage{OutputTokens: 10}, 0, false, false, "not in the catalog"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cost := c.CostFromUsage(tt.model, tt.usage)
			require.Equal(t, tt.wantKnown, cost.Known, cost.Detail)
			assert.Equal(t, tt.wantEstimated, cost.Estimated)
			assert.InDelta(t, tt.want, cost.USD, 1e-12)
			assert.Contains(t, cost.Detail, tt.detail)
		})
	}
}

func TestCatalogResponseCost(t *testing.T) {
	c := DefaultCatalog()
	images := func(n int) []provider.Image { return make([]provider.Image, n) }

	t.Run("per-image list price", func(t *testing.T) {
		req := &provider.Request{Model: "dall-e-3", Quality: "hd", Size: "1024x1024"}
		cost := c.ResponseCost(req, &provider.Response{Images: images(1)})
		require.True(t, cost.Known)
		assert.False(t, cost.Estimated)
		assert.InDelta(t, 0.08, cost.USD, 1e-12)
		assert.Equal(t, 1, cost.Images)
	})

	t.Run("per-image counts returned images", func(t *testing.T) {
		req := &provider.Request{Model: "dall-e-2", Size: "256x256", N: 5}
		cost := c.ResponseCost(req, &provider.Response{Images: images(3)})
		assert.InDelta(t, 3*0.016, cost.USD, 1e-12)
		assert.Equal(t, 3, cost.Images)
	})

	t.Run("usage", func(t *testing.T) {
		req := &provider.Request{Model: "gpt-image-1"}
		resp := &provider.Response{Images: images(2), Usage: &provider.Usage{InputTokens: 50, InputTextTokens: 50, OutputTokens: 544}}
		cost := c.ResponseCost(req, resp)
		require.True(t, cost.Known)
		assert.False(t, cost.Estimated)
		assert.InDelta(t, 50*5/1e6+544*40/1e6, cost.USD, 1e-12)
		assert.Equal(t, 2, cost.Images)
	})

	t.Run("no usage uses echoed size and quality", func(t *testing.T) {
		req := &provider.Request{Model: "gpt-image-1", Size: "auto", Quality: "auto"}
		resp := &provider.Response{Images: images(1), Size: "1024x1024", Quality: "low"}
		cost := c.ResponseCost(req, resp)
		require.True(t, cost.Known)
		assert.True(t, cost.Estimated)
		assert.InDelta(t, 0.01088, cost.USD, 1e-12)
		assert.Contains(t, cost.Detail, "no usage")
	})

	t.Run("answering model prices", func(t *testing.T) {
		req := &provider.Request{Model: "my-alias"}
		resp := &provider.Response{Model: "gpt-image-2.6-sunburst-2026-11-02", Images: images(1), Usage: &provider.Usage{OutputTokens: 1000}}
		cost := c.ResponseCost(req, resp)
		require.True(t, cost.Known)
		assert.InDelta(t, 0.03, cost.USD, 1e-12)
	})

	t.Run("unknown model", func(t *testing.T) {
		cost := c.ResponseCost(&provider.Request{Model: "flux"}, &provider.Response{Images: images(1)})
		assert.False(t, cost.Known)
		assert.Equal(t, 1, cost.Images)
	})

	t.Run("nil response", func(t *testing.T) {
		assert.False(t, c.ResponseCost(&provider.Request{Model: "gpt-image-1"}, nil).Known)
	})
}

func TestCostAddAndString(t *testing.T) {
	var zero Cost
	assert.False(t, zero.Known, "the zero Cost is unknown")
	assert.Equal(t, "unknown", zero.String())

	a := Cost{USD: 0.01088, Known: true, Estimated: true, Images: 1, Detail: "a"}
	b := Cost{USD: 0.04, Known: true, Images: 2, Detail: "b"}
	sum := Cost{Known: true}.Add(a).Add(b)
	assert.True(t, sum.Known)
	assert.True(t, sum.Estimated)
	assert.InDelta(t, 0.05088, sum.USD, 1e-12)
	assert.Equal(t, 3, sum.Images)
	assert.Equal(t, "a; b", sum.Detail)
	assert.Equal(t, "$0.0509 (estimated)", sum.String())
	assert.Equal(t, "$0.04", b.String())

	assert.False(t, a.Add(zero).Known, "adding an unknown cost makes the sum unknown")
}

func BenchmarkCatalogEstimateCost(b *testing.B) {
	c := DefaultCatalog()
	req := &provider.Request{Model: "gpt-image-1", Prompt: "a lighthouse at dusk", Quality: "medium", Size: "1536x1024", N: 2}
	b.ReportAllocs()
	for b.Loop() {
		if !c.EstimateCost(req).Known {
			b.Fatal("unknown cost")
		}
	}
}

func BenchmarkCatalogResponseCost(b *testing.B) {
	c := DefaultCatalog()
	req := &provider.Request{Model: "gpt-image-1"}
	resp := &provider.Response{Images: make([]provider.Image, 1), Usage: &provider.Usage{InputTokens: 20, InputTextTokens: 20, OutputTokens: 1056}}
	b.ReportAllocs()
	for b.Loop() {
		if !c.ResponseCost(req, resp).Known {
			b.Fatal("unknown cost")
		}
	}
}
