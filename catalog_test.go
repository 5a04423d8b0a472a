package imagegen

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultCatalogData(t *testing.T) {
	_, err := NewCatalog(defaultCatalogModels()...)
	require.NoError(t, err, "the built-in data must pass the catalog checks")

	c := DefaultCatalog()
	for _, name := range []string{
		"gpt-image-2", "gpt-image-2-2026-04-21",
		"gpt-image-2.5-sunburst", "gpt-image-2.5-flare",
		"gpt-image-2.5-sunburst-2026-09-08", "gpt-image-2.5-flare-2026-09-08",
		"gpt-image-2.6-sunburst", "gpt-image-2.6-flare",
		"gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5", "chatgpt-image-latest",
		"dall-e-2", "dall-e-3",
	} {
		_, ok := c.Lookup(name)
		assert.True(t, ok, "model %s", name)
	}
	assert.Len(t, c.Models(), 11)
}

func TestDefaultCatalogUnpublishedPricesUnknown(t *testing.T) {
	c := DefaultCatalog()
	for _, name := range []string{"gpt-image-2", "gpt-image-2.5-sunburst", "gpt-image-2.5-flare", "gpt-image-2.6-flare", "gpt-image-1.5", "chatgpt-image-latest"} {
		m, ok := c.Lookup(name)
		require.True(t, ok, name)
		assert.False(t, m.Pricing.ImageOutput.Known, "%s image output price", name)
		assert.False(t, m.Pricing.TextInput.Known, "%s text input price", name)
	}
	mini, _ := c.Lookup("gpt-image-1-mini")
	assert.Equal(t, USD(8), mini.Pricing.ImageOutput)
	assert.False(t, mini.Pricing.CachedTextInput.Known, "gpt-image-1-mini cached text price is not published")

	sunburst, _ := c.Lookup("gpt-image-2.6-sunburst")
	assert.Equal(t, USD(30), sunburst.Pricing.ImageOutput)
	assert.Equal(t, USD(2), sunburst.Pricing.CachedImageInput)
}

func TestDefaultCatalogFreshCopies(t *testing.T) {
	a := DefaultCatalog()
	b := DefaultCatalog()

	extended, err := a.With(Model{Name: "gpt-image-1", Sizes: []string{"64x64"}})
	require.NoError(t, err)

	got, _ := extended.Lookup("gpt-image-1")
	assert.Equal(t, []string{"64x64"}, got.Sizes)
	original, _ := a.Lookup("gpt-image-1")
	assert.Contains(t, original.Sizes, "1024x1024", "With must not change its receiver")
	other, _ := b.Lookup("gpt-image-1")
	assert.Contains(t, other.Sizes, "1024x1024", "catalogs must not share state")
}

func TestCatalogLookup(t *testing.T) {
	c := DefaultCatalog()
	tests := []struct {
		name   string
		want   string
		wantOK bool
	}{
		{"gpt-image-2", "gpt-image-2", true},
		{"gpt-image-2-2026-04-21", "gpt-image-2", true},
		{"gpt-image-2.5-flare-2026-09-08", "gpt-image-2.5-flare", true},
		{"gpt-image-2.6-sunburst-2027-01-15", "gpt-image-2.6-sunburst", true},
		{"gpt-image-1-2025-04-15", "gpt-image-1", true},
		{"gpt-image-2-2026-13-45", "", false},
		{"gpt-image-2-latest", "", false},
		{"GPT-IMAGE-2", "", false},
		{"my-azure-deployment", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := c.Lookup(tt.name)
			require.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, m.Name)
		})
	}
}

func TestCatalogLookupReturnsCopy(t *testing.T) {
	c := DefaultCatalog()
	m, _ := c.Lookup("gpt-image-1")
	m.Sizes[0] = "9x9"
	m.OutputTokens["low"]["1024x1024"] = 1
	m.FlexibleSize = &SizeRule{}
	m.Replacements[0] = "changed"

	again, _ := c.Lookup("gpt-image-1")
	assert.Equal(t, "auto", again.Sizes[0])
	assert.Equal(t, int64(272), again.OutputTokens["low"]["1024x1024"])
	assert.Nil(t, again.FlexibleSize)
	assert.Equal(t, "gpt-image-2.5-sunburst", again.Replacements[0])
}

func TestCatalogLookupKeepsEmptyLists(t *testing.T) {
	m, _ := DefaultCatalog().Lookup("gpt-image-2")
	assert.NotNil(t, m.Styles, "an empty list means the field is rejected and must survive copies")
	assert.Empty(t, m.Styles)
	assert.Nil(t, m.Presets)
}

func TestCatalogWith(t *testing.T) {
	base, err := NewCatalog(
		Model{Name: "alpha", Aliases: []string{"alpha-2026-01-01", "a"}},
		Model{Name: "beta"},
	)
	require.NoError(t, err)

	t.Run("replace frees old aliases", func(t *testing.T) {
		next, err := base.With(Model{Name: "alpha", Aliases: []string{"a2"}})
		require.NoError(t, err)
		_, ok := next.Lookup("a")
		assert.False(t, ok)
		m, ok := next.Lookup("a2")
		require.True(t, ok)
		assert.Equal(t, "alpha", m.Name)
		_, ok = base.Lookup("a")
		assert.True(t, ok, "the receiver keeps its aliases")
	})

	t.Run("alias taken by another model", func(t *testing.T) {
		_, err := base.With(Model{Name: "gamma", Aliases: []string{"a"}})
		require.Error(t, err)
		assert.Contains(t, err.Error(), `"a" already belongs to model "alpha"`)
	})

	t.Run("name that is another model's alias", func(t *testing.T) {
		_, err := base.With(Model{Name: "a"})
		require.Error(t, err)
		assert.Contains(t, err.Error(), `model "alpha"`)
	})

	t.Run("later entry replaces earlier", func(t *testing.T) {
		next, err := base.With(Model{Name: "gamma", MaxN: 2}, Model{Name: "gamma", MaxN: 3})
		require.NoError(t, err)
		assert.Equal(t, 3, next.MaxImagesPerCall("gamma"))
	})
}

func TestCatalogWithRejectsMalformedModels(t *testing.T) {
	tests := []struct {
		name  string
		model Model
		want  string
	}{
		{"empty name", Model{}, "name must be non-empty"},
		{"name with space", Model{Name: "gpt image"}, "no spaces"},
		{"empty alias", Model{Name: "m", Aliases: []string{""}}, "alias"},
		{"negative MaxN", Model{Name: "m", MaxN: -1}, "MaxN is -1"},
		{"bad size", Model{Name: "m", Sizes: []string{"big"}}, `size "big"`},
		{"bad default size", Model{Name: "m", DefaultSize: "1024"}, `size "1024"`},
		{"negative price", Model{Name: "m", Pricing: Pricing{ImageOutput: USD(-1)}}, "price ImageOutput"},
		{"negative per-image price", Model{Name: "m", Pricing: Pricing{PerImage: map[string]map[string]Price{"hd": {"1x1": USD(-2)}}}}, "PerImage[hd][1x1]"},
		{"bad token size", Model{Name: "m", OutputTokens: map[string]map[string]int64{"low": {"square": 10}}}, `OutputTokens["low"]["square"]`},
		{"edge bounds reversed", Model{Name: "m", FlexibleSize: &SizeRule{MinEdge: 100, MaxEdge: 50}}, "MinEdge 100 is above MaxEdge 50"},
		{"aspect ratio below one", Model{Name: "m", FlexibleSize: &SizeRule{MaxAspectRatio: 0.5}}, "MaxAspectRatio"},
		{"negative preset pixels", Model{Name: "m", Presets: map[Preset]PresetSetting{PresetWeb: {Pixels: -1}}}, `preset "web"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := DefaultCatalog().With(tt.model)
			require.Error(t, err)
			assert.Nil(t, c)
			assert.Contains(t, err.Error(), "imagegen: catalog model")
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestNilCatalog(t *testing.T) {
	var c *Catalog
	_, ok := c.Lookup("gpt-image-1")
	assert.False(t, ok)
	assert.Nil(t, c.Models())
	assert.Equal(t, MaxImagesPerRequest, c.MaxImagesPerCall("dall-e-3"))
	assert.NoError(t, c.CheckRetired("dall-e-3", time.Now()))
	assert.NoError(t, c.Validate(validRequest("dall-e-3")))
	assert.False(t, c.EstimateCost(validRequest("gpt-image-1")).Known)

	next, err := c.With(Model{Name: "custom", MaxN: 2})
	require.NoError(t, err)
	assert.Equal(t, 2, next.MaxImagesPerCall("custom"))
}

func TestCatalogMaxImagesPerCall(t *testing.T) {
	c := DefaultCatalog()
	assert.Equal(t, 1, c.MaxImagesPerCall("dall-e-3"))
	assert.Equal(t, 10, c.MaxImagesPerCall("dall-e-2"))
	assert.Equal(t, 10, c.MaxImagesPerCall("gpt-image-2-2026-04-21"))
	assert.Equal(t, MaxImagesPerRequest, c.MaxImagesPerCall("unknown-model"))
}

func TestCatalogCheckRetired(t *testing.T) {
	c := DefaultCatalog()
	day := func(year int, month time.Month, d int) time.Time {
		return time.Date(year, month, d, 0, 0, 0, 0, time.UTC)
	}
	tests := []struct {
		model    string
		now      time.Time
		retired  bool
		contains []string
	}{
		{"gpt-image-1", day(2026, time.October, 22), false, nil},
		{"gpt-image-1", day(2026, time.October, 23), true, []string{"gpt-image-1", "2026-10-23", "gpt-image-2.5-sunburst or gpt-image-2.5-flare"}},
		{"gpt-image-1-2025-04-15", day(2026, time.November, 1), true, []string{"gpt-image-1-2025-04-15", "2026-10-23"}},
		{"gpt-image-1-mini", day(2026, time.November, 30), false, nil},
		{"gpt-image-1-mini", day(2026, time.December, 1), true, []string{"2026-12-01", "gpt-image-2.6-sunburst or gpt-image-2.6-flare"}},
		{"gpt-image-1.5", day(2026, time.December, 2), true, []string{"gpt-image-1.5", "2026-12-01", "gpt-image-2.6-sunburst"}},
		{"chatgpt-image-latest", day(2026, time.December, 2), true, []string{"chatgpt-image-latest", "2026-12-01"}},
		{"dall-e-3", day(2026, time.May, 11), false, nil},
		{"dall-e-3", day(2026, time.May, 12), true, []string{"dall-e-3", "2026-05-12", "choose a current model"}},
		{"dall-e-2", day(2027, time.January, 1), true, []string{"dall-e-2", "2026-05-12"}},
		{"gpt-image-2", day(2030, time.January, 1), false, nil},
		{"unknown-model", day(2030, time.January, 1), false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.model+" "+tt.now.Format(time.DateOnly), func(t *testing.T) {
			err := c.CheckRetired(tt.model, tt.now)
			if !tt.retired {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrModelRetired)
			assert.ErrorIs(t, err, ErrNotFound)
			var retired *RetiredError
			require.True(t, errors.As(err, &retired))
			assert.Equal(t, tt.model, retired.Model)
			for _, s := range tt.contains {
				assert.Contains(t, err.Error(), s)
			}
			assert.Equal(t, ClassNotFound, classify(err))
		})
	}
}

func BenchmarkDefaultCatalog(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if DefaultCatalog().len() == 0 {
			b.Fatal("empty catalog")
		}
	}
}
