package imagegen

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagegen-go/imagegen/provider"
)

func TestCatalogSelectPresets(t *testing.T) {
	c := DefaultCatalog()
	tests := []struct {
		model       string
		preset      Preset
		wantQuality string
		wantSize    string
		wantCost    float64 // 0: unknown
	}{
		{"gpt-image-1", PresetPreview, "low", "1024x1024", 0.01088},
		{"gpt-image-1", PresetWeb, "medium", "1024x1024", 0.04224},
		{"gpt-image-1", "", "medium", "1024x1024", 0.04224},
		{"gpt-image-1", PresetPrint, "high", "1024x1024", 0.1664},
		{"gpt-image-2", PresetPreview, "low", "1024x1024", 0},
		{"gpt-image-2", PresetWeb, "medium", "1024x1024", 0},
		{"gpt-image-2", PresetPrint, "high", "2048x2048", 0},
		{"dall-e-3", PresetPreview, "standard", "1024x1024", 0.04},
		{"dall-e-3", PresetPrint, "hd", "1024x1024", 0.08},
		{"dall-e-2", PresetPreview, "standard", "512x512", 0.018},
		{"dall-e-2", PresetWeb, "standard", "1024x1024", 0.020},
	}
	for _, tt := range tests {
		t.Run(tt.model+" "+string(tt.preset), func(t *testing.T) {
			choice, err := c.Select(tt.model, Selection{Preset: tt.preset})
			require.NoError(t, err)
			assert.Equal(t, tt.wantQuality, choice.Quality)
			assert.Equal(t, tt.wantSize, choice.Size)
			assert.Contains(t, choice.Reason, "preset")
			assert.Contains(t, choice.Reason, choice.Size)
			if tt.wantCost == 0 {
				assert.False(t, choice.EstimatedCostPerImage.Known)
			} else {
				require.True(t, choice.EstimatedCostPerImage.Known)
				assert.InDelta(t, tt.wantCost, choice.EstimatedCostPerImage.USD, 1e-9)
			}
			assertChoiceValid(t, c, tt.model, choice)
		})
	}
}

// assertChoiceValid checks that the catalog accepts the choice it made.
func assertChoiceValid(t *testing.T, c *Catalog, model string, choice Choice) {
	t.Helper()
	req := validRequest(model)
	req.Size, req.Quality = choice.Size, choice.Quality
	assert.NoError(t, c.Validate(req))
}

func TestCatalogSelectAspectRatioFixedSizes(t *testing.T) {
	c := DefaultCatalog()
	tests := []struct {
		model, ratio, want string
	}{
		{"gpt-image-1", "16:9", "1536x1024"},
		{"gpt-image-1", "9:16", "1024x1536"},
		{"gpt-image-1", "1:1", "1024x1024"},
		{"gpt-image-1", "", "1024x1024"},
		{"gpt-image-1", "4:3", "1536x1024"},
		{"gpt-image-1", "3:4", "1024x1536"},
		{"gpt-image-1", "1.5", "1536x1024"},
		{"dall-e-3", "16:9", "1792x1024"},
		{"dall-e-3", "9:16", "1024x1792"},
		{"dall-e-3", "1:1", "1024x1024"},
		{"dall-e-3", "4:3", "1792x1024"},
		{"dall-e-2", "16:9", "1024x1024"},
	}
	for _, tt := range tests {
		t.Run(tt.model+" "+tt.ratio, func(t *testing.T) {
			choice, err := c.Select(tt.model, Selection{AspectRatio: tt.ratio})
			require.NoError(t, err)
			assert.Equal(t, tt.want, choice.Size)
			assertChoiceValid(t, c, tt.model, choice)
		})
	}

	choice, err := c.Select("gpt-image-1", Selection{AspectRatio: "16:9"})
	require.NoError(t, err)
	assert.Contains(t, choice.Reason, "the gpt-image-1 size nearest 16:9")
	choice, err = c.Select("gpt-image-1", Selection{AspectRatio: "3:2"})
	require.NoError(t, err)
	assert.Contains(t, choice.Reason, "exactly 3:2")
}

func TestCatalogSelectAspectRatioFlexibleSizes(t *testing.T) {
	c := DefaultCatalog()
	tests := []struct {
		ratio     string
		preset    Preset
		wantRatio float64
		pixels    float64
	}{
		{"16:9", PresetWeb, 16.0 / 9, 1024 * 1024},
		{"9:16", PresetWeb, 9.0 / 16, 1024 * 1024},
		{"1:1", PresetWeb, 1, 1024 * 1024},
		{"4:3", PresetWeb, 4.0 / 3, 1024 * 1024},
		{"16:9", PresetPrint, 16.0 / 9, 2048 * 2048},
		{"21:9", PresetPrint, 21.0 / 9, 2048 * 2048},
		{"1.85", PresetPreview, 1.85, 1024 * 1024},
	}
	for _, tt := range tests {
		t.Run(tt.ratio+" "+string(tt.preset), func(t *testing.T) {
			choice, err := c.Select("gpt-image-2", Selection{Preset: tt.preset, AspectRatio: tt.ratio})
			require.NoError(t, err)
			width, height, ok := parseSizeWxH(choice.Size)
			require.True(t, ok, choice.Size)
			assert.Zero(t, width%16, "width %d is a multiple of 16", width)
			assert.Zero(t, height%16, "height %d is a multiple of 16", height)
			assert.InEpsilon(t, tt.wantRatio, float64(width)/float64(height), 0.02, choice.Size)
			assert.InEpsilon(t, tt.pixels, float64(width*height), 0.05, choice.Size)
			assertChoiceValid(t, c, "gpt-image-2", choice)
		})
	}

	choice, err := c.Select("gpt-image-2", Selection{AspectRatio: "16:9"})
	require.NoError(t, err)
	assert.Equal(t, "1360x768", choice.Size)
	assert.Contains(t, choice.Reason, "16:9 at about 1.0 megapixels")
}

func TestCatalogSelectClampsExtremeRatio(t *testing.T) {
	c := DefaultCatalog()
	choice, err := c.Select("gpt-image-2", Selection{AspectRatio: "5:1"})
	require.NoError(t, err)
	width, height, _ := parseSizeWxH(choice.Size)
	assert.LessOrEqual(t, float64(width)/float64(height), 3.0)
	assert.InEpsilon(t, 3.0, float64(width)/float64(height), 0.02)
	assert.Contains(t, choice.Reason, "3:1, the nearest ratio gpt-image-2 accepts to 5.00:1")
	assertChoiceValid(t, c, "gpt-image-2", choice)

	choice, err = c.Select("gpt-image-2", Selection{AspectRatio: "1:10", Preset: PresetPrint})
	require.NoError(t, err)
	width, height, _ = parseSizeWxH(choice.Size)
	assert.InEpsilon(t, 1.0/3, float64(width)/float64(height), 0.02)
	assertChoiceValid(t, c, "gpt-image-2", choice)
}

func TestCatalogSelectWithinCap(t *testing.T) {
	c := DefaultCatalog()
	tests := []struct {
		name        string
		model       string
		sel         Selection
		wantQuality string
		wantSize    string
		wantCost    float64
		reason      []string
	}{
		{"highest that fits", "gpt-image-1", Selection{MaxCostPerImage: 0.05}, "medium", "1024x1024", 0.04224,
			[]string{"quality medium at 1024x1024", "$0.05 per-image cap", "quality high at 1024x1024 would cost an estimated $0.1664"}},
		{"cap allows the best", "gpt-image-1", Selection{MaxCostPerImage: 0.20}, "high", "1024x1024", 0.1664, []string{"highest"}},
		{"cap lowers quality of wide image", "gpt-image-1", Selection{AspectRatio: "16:9", MaxCostPerImage: 0.20}, "medium", "1536x1024", 0.06272, nil},
		{"preset is a ceiling", "gpt-image-1", Selection{Preset: PresetWeb, MaxCostPerImage: 1}, "medium", "1024x1024", 0.04224, []string{"web preset capped"}},
		{"cap lowers a preset", "gpt-image-1", Selection{Preset: PresetPrint, MaxCostPerImage: 0.05}, "medium", "1024x1024", 0.04224, []string{"print preset capped"}},
		{"exact cap fits", "gpt-image-1", Selection{MaxCostPerImage: 0.01088}, "low", "1024x1024", 0.01088, nil},
		{"dall-e-3 square", "dall-e-3", Selection{MaxCostPerImage: 0.05}, "standard", "1024x1024", 0.04, nil},
		{"dall-e-3 hd", "dall-e-3", Selection{MaxCostPerImage: 0.10}, "hd", "1024x1024", 0.08, nil},
		{"dall-e-2 smaller size", "dall-e-2", Selection{MaxCostPerImage: 0.017}, "standard", "256x256", 0.016, nil},
		{"dall-e-2 middle size", "dall-e-2", Selection{MaxCostPerImage: 0.019}, "standard", "512x512", 0.018, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			choice, err := c.Select(tt.model, tt.sel)
			require.NoError(t, err)
			assert.Equal(t, tt.wantQuality, choice.Quality)
			assert.Equal(t, tt.wantSize, choice.Size)
			require.True(t, choice.EstimatedCostPerImage.Known)
			assert.InDelta(t, tt.wantCost, choice.EstimatedCostPerImage.USD, 1e-9)
			assert.LessOrEqual(t, choice.EstimatedCostPerImage.USD, tt.sel.MaxCostPerImage)
			for _, s := range tt.reason {
				assert.Contains(t, choice.Reason, s)
			}
			assertChoiceValid(t, c, tt.model, choice)
		})
	}
}

func TestCatalogSelectWithinCapFlexible(t *testing.T) {
	base := DefaultCatalog()
	m, _ := base.Lookup("gpt-image-2")
	gptImage1, _ := base.Lookup("gpt-image-1")
	m.Name, m.Aliases = "priced-flexible", nil
	m.Pricing = gptImage1.Pricing
	m.OutputTokens = gptImage1.OutputTokens
	c, err := base.With(m)
	require.NoError(t, err)

	// high at 4 megapixels is 4 × 4160 tokens = $0.6656, at 1 megapixel $0.1664.
	choice, err := c.Select("priced-flexible", Selection{Preset: PresetPrint, MaxCostPerImage: 0.70})
	require.NoError(t, err)
	assert.Equal(t, "high", choice.Quality)
	assert.Equal(t, "2048x2048", choice.Size)
	assert.InDelta(t, 0.6656, choice.EstimatedCostPerImage.USD, 1e-9)

	choice, err = c.Select("priced-flexible", Selection{Preset: PresetPrint, MaxCostPerImage: 0.20})
	require.NoError(t, err)
	assert.Equal(t, "high", choice.Quality)
	assert.Equal(t, "1024x1024", choice.Size)

	choice, err = c.Select("priced-flexible", Selection{AspectRatio: "16:9", MaxCostPerImage: 0.05})
	require.NoError(t, err)
	assert.Equal(t, "medium", choice.Quality)
	assert.Equal(t, "1360x768", choice.Size)
	assertChoiceValid(t, c, "priced-flexible", choice)
}

func TestCatalogSelectNothingFits(t *testing.T) {
	c := DefaultCatalog()

	_, err := c.Select("gpt-image-1", Selection{MaxCostPerImage: 0.01})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrBudgetExceeded)
	assert.Contains(t, err.Error(), "gpt-image-1")
	assert.Contains(t, err.Error(), "$0.01")
	assert.Contains(t, err.Error(), "quality low at 1024x1024, costs an estimated $0.0109")

	_, err = c.Select("dall-e-3", Selection{AspectRatio: "16:9", MaxCostPerImage: 0.05})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrBudgetExceeded)
	assert.Contains(t, err.Error(), "quality standard at 1792x1024, costs an estimated $0.08")

	_, err = c.Select("gpt-image-2", Selection{MaxCostPerImage: 0.05})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrCostUnknown)
	assert.NotErrorIs(t, err, ErrBudgetExceeded)
	assert.Contains(t, err.Error(), "gpt-image-2 has no cost estimates")
}

func TestCatalogSelectRejectsBadInput(t *testing.T) {
	c := DefaultCatalog()
	tests := []struct {
		name  string
		model string
		sel   Selection
		field string
		want  []string
	}{
		{"unknown model", "flux", Selection{}, "model", []string{`"flux"`, "not in the catalog"}},
		{"unknown preset", "gpt-image-1", Selection{Preset: "poster"}, "preset", []string{`"poster"`, "gpt-image-1", "preview, web, print"}},
		{"ratio with slash", "gpt-image-1", Selection{AspectRatio: "16/9"}, "aspect_ratio", []string{`"16/9"`, "16:9"}},
		{"ratio zero height", "gpt-image-1", Selection{AspectRatio: "1:0"}, "aspect_ratio", nil},
		{"ratio zero", "gpt-image-1", Selection{AspectRatio: "0"}, "aspect_ratio", nil},
		{"ratio negative", "gpt-image-1", Selection{AspectRatio: "-1.5"}, "aspect_ratio", nil},
		{"ratio words", "gpt-image-1", Selection{AspectRatio: "wide"}, "aspect_ratio", nil},
		{"ratio infinite", "gpt-image-1", Selection{AspectRatio: "Inf"}, "aspect_ratio", nil},
		{"negative cap", "gpt-image-1", Selection{MaxCostPerImage: -1}, "max_cost_per_image", []string{`"-1"`}},
		{"NaN cap", "gpt-image-1", Selection{MaxCostPerImage: math.NaN()}, "max_cost_per_image", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Select(tt.model, tt.sel)
			assertValidationError(t, err, tt.field, tt.want...)
		})
	}
}

func TestCatalogSelectCustomPreset(t *testing.T) {
	c, err := DefaultCatalog().With(Model{
		Name:      "house",
		Sizes:     []string{"512x512", "1024x1024"},
		Qualities: []string{"draft", "final"},
		Presets:   map[Preset]PresetSetting{"thumbnail": {Quality: "draft", Pixels: 512 * 512}},
	})
	require.NoError(t, err)

	choice, err := c.Select("house", Selection{Preset: "thumbnail"})
	require.NoError(t, err)
	assert.Equal(t, "draft", choice.Quality)
	assert.Equal(t, "512x512", choice.Size)

	choice, err = c.Select("house", Selection{Preset: PresetPrint})
	require.NoError(t, err)
	assert.Equal(t, "final", choice.Quality, "print takes the highest listed quality without a high one")
	assert.Equal(t, "1024x1024", choice.Size)

	_, err = c.Select("house", Selection{Preset: "poster"})
	assertValidationError(t, err, "preset", "thumbnail")
}

func TestSizeRuleFitRatioObeysBounds(t *testing.T) {
	rule := &SizeRule{MinEdge: 256, MaxEdge: 3840, Multiple: 16, MaxPixels: 3840 * 2160, MaxAspectRatio: 3}
	for _, ratio := range []float64{0.2, 1.0 / 3, 0.5, 9.0 / 16, 1, 4.0 / 3, 16.0 / 9, 2.39, 3, 10} {
		for _, pixels := range []int{1, 256 * 256, 1024 * 1024, 4096 * 4096, 1 << 30} {
			width, height, _, ok := rule.fitRatio(ratio, pixels)
			require.True(t, ok, "ratio %v pixels %d", ratio, pixels)
			assert.Empty(t, rule.violation(width, height), "ratio %v pixels %d gave %dx%d", ratio, pixels, width, height)
		}
	}
}

func TestSelectEstimateMatchesEstimateCost(t *testing.T) {
	c := DefaultCatalog()
	choice, err := c.Select("gpt-image-1", Selection{Preset: PresetPrint, AspectRatio: "9:16"})
	require.NoError(t, err)
	cost := c.EstimateCost(&provider.Request{Model: "gpt-image-1", Size: choice.Size, Quality: choice.Quality})
	assert.InDelta(t, cost.USD, choice.EstimatedCostPerImage.USD, 1e-12)
	assert.False(t, errors.Is(err, ErrBudgetExceeded))
}

func BenchmarkCatalogSelect(b *testing.B) {
	c := DefaultCatalog()
	sel := Selection{Preset: PresetPrint, AspectRatio: "16:9", MaxCostPerImage: 0.10}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Select("gpt-image-1", sel); err != nil {
			b.Fatal(err)
		}
	}
}
