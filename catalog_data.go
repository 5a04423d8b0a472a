package imagegen

import "time"

// DefaultCatalog returns a new catalog of OpenAI's image models, available and
// retired, as of December 2026. Each call returns a fresh catalog, so callers
// may extend it with Catalog.With without affecting others.
//
// Retired models keep their data because gateways and Azure deployments may
// still serve them. Prices that OpenAI has not published stay unknown.
func DefaultCatalog() *Catalog {
	c, err := NewCatalog(defaultCatalogModels()...)
	if err != nil {
		// TestDefaultCatalogData checks that the data passes NewCatalog.
		// Should it fail, an empty catalog still validates generically.
		return &Catalog{}
	}
	return c
}

// defaultCatalogModels returns the built-in entries.
//
// Source: OpenAI's model list, price list and deprecation schedule, and the
// request field vocabularies of openai-go v3.102.0 to v3.105.0, as collected
// in December 2026. Values that no source gives per model are marked NOTE.
func defaultCatalogModels() []Model {
	// Shutdown dates from OpenAI's deprecation schedule.
	dallEShutdown := time.Date(2026, time.May, 12, 0, 0, 0, 0, time.UTC)
	gptImage1Shutdown := time.Date(2026, time.October, 23, 0, 0, 0, 0, time.UTC)
	gptImage1FamilyShutdown := time.Date(2026, time.December, 1, 0, 0, 0, 0, time.UTC)

	gen25 := []string{"gpt-image-2.5-sunburst", "gpt-image-2.5-flare"}
	gen26 := []string{"gpt-image-2.6-sunburst", "gpt-image-2.6-flare"}

	// gpt-image-1 prices per 1M tokens and its published output tokens per
	// image, which reproduce the published per-image prices at $40/1M
	// (1024x1024: low $0.011, medium $0.042, high $0.167).
	gptImage1Pricing := Pricing{
		TextInput:        USD(5),
		CachedTextInput:  USD(1.25),
		ImageInput:       USD(10),
		CachedImageInput: USD(2.50),
		ImageOutput:      USD(40),
	}
	gptImage1Tokens := map[string]map[string]int64{
		"low":    {"1024x1024": 272, "1024x1536": 408, "1536x1024": 400},
		"medium": {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568},
		"high":   {"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208},
	}

	models := []Model{
		gptImage2Family("gpt-image-2", []string{"gpt-image-2-2026-04-21"}, Pricing{}),
		gptImage2Family("gpt-image-2.5-sunburst", []string{"gpt-image-2.5-sunburst-2026-09-08"}, Pricing{}),
		gptImage2Family("gpt-image-2.5-flare", []string{"gpt-image-2.5-flare-2026-09-08"}, Pricing{}),
		gptImage2Family("gpt-image-2.6-sunburst", nil, Pricing{
			TextInput:        USD(5),
			CachedTextInput:  USD(1.25),
			ImageInput:       USD(8),
			CachedImageInput: USD(2),
			ImageOutput:      USD(30),
		}),
		gptImage2Family("gpt-image-2.6-flare", nil, Pricing{}),

		gptImage1Family("gpt-image-1", gptImage1Pricing, gptImage1Tokens, gptImage1Shutdown, gen25),
		gptImage1Family("gpt-image-1-mini", Pricing{
			TextInput:   USD(2),
			ImageInput:  USD(2.50),
			ImageOutput: USD(8),
		}, nil, gptImage1FamilyShutdown, gen26),
		gptImage1Family("gpt-image-1.5", Pricing{}, nil, gptImage1FamilyShutdown, gen26),
		gptImage1Family("chatgpt-image-latest", Pricing{}, nil, gptImage1FamilyShutdown, gen26),

		{
			Name:           "dall-e-3",
			Sizes:          []string{"1024x1024", "1792x1024", "1024x1792"},
			Qualities:      []string{"standard", "hd"},
			OutputFormats:  []string{},
			Backgrounds:    []string{},
			Moderations:    []string{},
			Styles:         []string{"vivid", "natural"},
			DefaultSize:    "1024x1024",
			DefaultQuality: "standard",
			MaxN:           1,
			Pricing: Pricing{PerImage: map[string]map[string]Price{
				"standard": {"1024x1024": USD(0.04), "1792x1024": USD(0.08), "1024x1792": USD(0.08)},
				"hd":       {"1024x1024": USD(0.08), "1792x1024": USD(0.12), "1024x1792": USD(0.12)},
			}},
			Presets: map[Preset]PresetSetting{
				PresetPreview: {Quality: "standard"},
				PresetWeb:     {Quality: "standard"},
				PresetPrint:   {Quality: "hd"},
			},
			Retired: dallEShutdown,
		},
		{
			Name:           "dall-e-2",
			Sizes:          []string{"256x256", "512x512", "1024x1024"},
			Qualities:      []string{"standard"},
			OutputFormats:  []string{},
			Backgrounds:    []string{},
			Moderations:    []string{},
			Styles:         []string{},
			DefaultSize:    "1024x1024",
			DefaultQuality: "standard",
			MaxN:           10,
			SupportsEdits:  true,
			Pricing: Pricing{PerImage: map[string]map[string]Price{
				"standard": {"256x256": USD(0.016), "512x512": USD(0.018), "1024x1024": USD(0.020)},
			}},
			Presets: map[Preset]PresetSetting{
				PresetPreview: {Quality: "standard", Pixels: 512 * 512},
				PresetWeb:     {Quality: "standard", Pixels: 1024 * 1024},
				PresetPrint:   {Quality: "standard", Pixels: 1024 * 1024},
			},
			Retired: dallEShutdown,
		},
	}
	return models
}

// gptImage2Family returns an entry for gpt-image-2 and its successors, which
// accept free-form sizes.
func gptImage2Family(name string, aliases []string, pricing Pricing) Model {
	m := gptImageModel(name, pricing)
	m.Aliases = aliases
	// NOTE: OpenAI publishes no bounds for free-form sizes. These are
	// assumptions; replace the entry with Catalog.With when the service
	// accepts sizes that they reject.
	m.FlexibleSize = &SizeRule{
		MinEdge:        256,
		MaxEdge:        3840,
		Multiple:       16,
		MaxPixels:      3840 * 2160,
		MaxAspectRatio: 3,
	}
	// NOTE: the API lists low, medium, high, xhigh, max and auto without
	// saying which models take xhigh and max. The gpt-image-2 family
	// accepts all of them here, so a value the service rejects costs one
	// failed, unbilled request instead of blocking a valid one.
	m.Qualities = []string{"low", "medium", "high", "xhigh", "max", "auto"}
	m.OutputFormats = []string{"png", "jpeg", "webp", "gif", "svg"}
	return m
}

// gptImage1Family returns an entry for gpt-image-1 and the models shut down
// with or after it, which accept only the three fixed sizes.
//
// NOTE: gpt-image-1's vocabulary is assumed for gpt-image-1-mini,
// gpt-image-1.5 and chatgpt-image-latest, which no source lists separately.
func gptImage1Family(name string, pricing Pricing, outputTokens map[string]map[string]int64, retired time.Time, replacements []string) Model {
	m := gptImageModel(name, pricing)
	m.OutputTokens = outputTokens
	m.Retired = retired
	m.Replacements = replacements
	return m
}

// gptImageModel returns the fields that all GPT Image models share, with
// gpt-image-1's sizes, qualities and formats.
func gptImageModel(name string, pricing Pricing) Model {
	return Model{
		Name:              name,
		Sizes:             []string{"auto", "1024x1024", "1536x1024", "1024x1536"},
		Qualities:         []string{"low", "medium", "high", "auto"},
		OutputFormats:     []string{"png", "jpeg", "webp"},
		Backgrounds:       []string{"transparent", "opaque", "auto"},
		Moderations:       []string{"auto", "low"},
		Styles:            []string{},
		MaxN:              10,
		SupportsEdits:     true,
		SupportsStreaming: true,
		Pricing:           pricing,
	}
}
