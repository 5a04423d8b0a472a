package imagegen

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagegen-go/imagegen/provider"
)

func validRequest(model string) *provider.Request {
	return &provider.Request{Model: model, Prompt: "a lighthouse at dusk"}
}

func intPtr(v int) *int { return &v }

func TestValidateGeneric(t *testing.T) {
	tests := []struct {
		name  string
		req   *provider.Request
		field string // empty: valid
		want  []string
	}{
		{"nil request", nil, "request", []string{"nil"}},
		{"empty prompt", &provider.Request{}, "prompt", []string{"empty"}},
		{"blank prompt", &provider.Request{Prompt: " \n\t"}, "prompt", []string{"empty"}},
		{"prompt at limit in runes", &provider.Request{Prompt: strings.Repeat("é", MaxPromptRunes)}, "", nil},
		{"prompt over limit", &provider.Request{Prompt: strings.Repeat("a", MaxPromptRunes+1)}, "prompt", []string{"32001", "32000"}},
		{"n zero means one", &provider.Request{Prompt: "p", N: 0}, "", nil},
		{"n ten", &provider.Request{Prompt: "p", N: 10}, "", nil},
		{"n negative", &provider.Request{Prompt: "p", N: -1}, "n", []string{`"-1"`, "1 to 10"}},
		{"n eleven", &provider.Request{Prompt: "p", N: 11}, "n", []string{`"11"`, "1 to 10"}},
		{"size auto", &provider.Request{Prompt: "p", Size: "auto"}, "", nil},
		{"size odd but well-formed", &provider.Request{Prompt: "p", Size: "7x5"}, "", nil},
		{"size no height", &provider.Request{Prompt: "p", Size: "1024"}, "size", []string{`"1024"`, "WIDTHxHEIGHT"}},
		{"size zero edge", &provider.Request{Prompt: "p", Size: "0x1024"}, "size", []string{`"0x1024"`}},
		{"size negative", &provider.Request{Prompt: "p", Size: "-1x5"}, "size", []string{`"-1x5"`}},
		{"size capital X", &provider.Request{Prompt: "p", Size: "1024X1024"}, "size", []string{`"1024X1024"`}},
		{"size spaces", &provider.Request{Prompt: "p", Size: " 1024x1024"}, "size", nil},
		{"size words", &provider.Request{Prompt: "p", Size: "large"}, "size", []string{"auto"}},
		{"compression zero", &provider.Request{Prompt: "p", OutputCompression: intPtr(0)}, "", nil},
		{"compression hundred", &provider.Request{Prompt: "p", OutputCompression: intPtr(100)}, "", nil},
		{"compression negative", &provider.Request{Prompt: "p", OutputCompression: intPtr(-1)}, "output_compression", []string{`"-1"`, "0 to 100"}},
		{"compression over", &provider.Request{Prompt: "p", OutputCompression: intPtr(101)}, "output_compression", []string{`"101"`, "0 to 100"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateGeneric(tt.req)
			if tt.field == "" {
				assert.NoError(t, err)
				return
			}
			assertValidationError(t, err, tt.field, tt.want...)
		})
	}
}

// assertValidationError checks that err is a *ValidationError of field whose
// text contains every string in want.
func assertValidationError(t *testing.T, err error, field string, want ...string) {
	t.Helper()
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrInvalidRequest)
	var v *ValidationError
	require.True(t, errors.As(err, &v), "want *ValidationError, got %T", err)
	assert.Equal(t, field, v.Field)
	assert.True(t, strings.HasPrefix(err.Error(), "imagegen: invalid "), err.Error())
	for _, s := range want {
		assert.Contains(t, err.Error(), s)
	}
}

func TestCatalogValidate(t *testing.T) {
	c := DefaultCatalog()
	tests := []struct {
		name   string
		model  string
		modify func(*provider.Request)
		field  string // empty: valid
		want   []string
	}{
		// Sizes: fixed list.
		{"fixed size listed", "gpt-image-1", func(r *provider.Request) { r.Size = "1536x1024" }, "", nil},
		{"fixed size auto", "gpt-image-1", func(r *provider.Request) { r.Size = "auto" }, "", nil},
		{"fixed size unlisted", "gpt-image-1", func(r *provider.Request) { r.Size = "2048x2048" },
			"size", []string{`"2048x2048"`, "gpt-image-1", "auto, 1024x1024, 1536x1024, 1024x1536"}},
		{"dall-e-3 no auto", "dall-e-3", func(r *provider.Request) { r.Size = "auto" },
			"size", []string{`"auto"`, "dall-e-3", "1024x1024, 1792x1024, 1024x1792"}},
		{"dall-e-3 wide", "dall-e-3", func(r *provider.Request) { r.Size = "1792x1024" }, "", nil},
		{"dall-e-2 small", "dall-e-2", func(r *provider.Request) { r.Size = "256x256" }, "", nil},

		// Sizes: free-form rule.
		{"flexible size within rule", "gpt-image-2", func(r *provider.Request) { r.Size = "2048x1152" }, "", nil},
		{"flexible size listed", "gpt-image-2.6-sunburst", func(r *provider.Request) { r.Size = "1024x1536" }, "", nil},
		{"flexible size snapshot", "gpt-image-2-2026-04-21", func(r *provider.Request) { r.Size = "1000x1000" },
			"size", []string{`"1000x1000"`, "gpt-image-2", "multiples of 16", "auto, 1024x1024"}},
		{"flexible size too large", "gpt-image-2.5-flare", func(r *provider.Request) { r.Size = "4096x2048" },
			"size", []string{`"4096x2048"`, "gpt-image-2.5-flare", "4096-pixel edge is above the maximum of 3840"}},
		{"flexible size too small", "gpt-image-2", func(r *provider.Request) { r.Size = "128x128" },
			"size", []string{`"128x128"`, "gpt-image-2", "below the minimum of 256"}},
		{"flexible size too many pixels", "gpt-image-2", func(r *provider.Request) { r.Size = "3840x2176" },
			"size", []string{"gpt-image-2", "8355840 pixels is above the maximum of 8294400"}},
		{"flexible size too narrow", "gpt-image-2", func(r *provider.Request) { r.Size = "3200x1024" },
			"size", []string{"gpt-image-2", "aspect ratio 3.12:1 is above the maximum of 3:1"}},

		// Quality vocabularies.
		{"quality gpt-image-1", "gpt-image-1", func(r *provider.Request) { r.Quality = "high" }, "", nil},
		{"quality xhigh on gpt-image-1", "gpt-image-1", func(r *provider.Request) { r.Quality = "xhigh" },
			"quality", []string{`"xhigh"`, "gpt-image-1", "low, medium, high, auto"}},
		{"quality xhigh on gpt-image-2", "gpt-image-2", func(r *provider.Request) { r.Quality = "xhigh" }, "", nil},
		{"quality max on gpt-image-2.6", "gpt-image-2.6-flare", func(r *provider.Request) { r.Quality = "max" }, "", nil},
		{"quality hd on gpt-image-1", "gpt-image-1", func(r *provider.Request) { r.Quality = "hd" },
			"quality", []string{`"hd"`, "gpt-image-1"}},
		{"quality high on dall-e-3", "dall-e-3", func(r *provider.Request) { r.Quality = "high" },
			"quality", []string{`"high"`, "dall-e-3", "standard, hd"}},

		// n.
		{"n eleven named model", "gpt-image-1", func(r *provider.Request) { r.N = 11 },
			"n", []string{`"11"`, "gpt-image-1", "1 to 10"}},
		{"n above per-call limit is split", "dall-e-3", func(r *provider.Request) { r.N = 4 }, "", nil},

		// Background and format.
		{"transparent png", "gpt-image-1", func(r *provider.Request) { r.Background = "transparent"; r.OutputFormat = "png" }, "", nil},
		{"transparent webp", "gpt-image-2", func(r *provider.Request) { r.Background = "transparent"; r.OutputFormat = "webp" }, "", nil},
		{"transparent default format", "gpt-image-1", func(r *provider.Request) { r.Background = "transparent" }, "", nil},
		{"transparent jpeg", "gpt-image-1", func(r *provider.Request) { r.Background = "transparent"; r.OutputFormat = "jpeg" },
			"background", []string{`"transparent"`, "gpt-image-1", "png or webp", "jpeg"}},
		{"transparent gif", "gpt-image-2", func(r *provider.Request) { r.Background = "transparent"; r.OutputFormat = "gif" },
			"background", []string{`"transparent"`, "gpt-image-2", "png or webp"}},
		{"background on dall-e-3", "dall-e-3", func(r *provider.Request) { r.Background = "opaque" },
			"background", []string{`"opaque"`, "dall-e-3 does not accept background"}},
		{"bad background", "gpt-image-1", func(r *provider.Request) { r.Background = "clear" },
			"background", []string{`"clear"`, "gpt-image-1", "transparent, opaque, auto"}},
		{"gif on gpt-image-1", "gpt-image-1", func(r *provider.Request) { r.OutputFormat = "gif" },
			"output_format", []string{`"gif"`, "gpt-image-1", "png, jpeg, webp"}},
		{"svg on gpt-image-2", "gpt-image-2", func(r *provider.Request) { r.OutputFormat = "svg" }, "", nil},
		{"format on dall-e-2", "dall-e-2", func(r *provider.Request) { r.OutputFormat = "png" },
			"output_format", []string{`"png"`, "dall-e-2 does not accept output_format"}},

		// Compression.
		{"compression jpeg", "gpt-image-1", func(r *provider.Request) { r.OutputFormat = "jpeg"; r.OutputCompression = intPtr(80) }, "", nil},
		{"compression webp", "gpt-image-2", func(r *provider.Request) { r.OutputFormat = "webp"; r.OutputCompression = intPtr(0) }, "", nil},
		{"compression png", "gpt-image-1", func(r *provider.Request) { r.OutputFormat = "png"; r.OutputCompression = intPtr(80) },
			"output_compression", []string{`"80"`, "gpt-image-1", "jpeg and webp", "output_format is png"}},
		{"compression default format", "gpt-image-2", func(r *provider.Request) { r.OutputCompression = intPtr(50) },
			"output_compression", []string{`"50"`, "gpt-image-2", "jpeg and webp", "png by default"}},
		{"compression on dall-e-3", "dall-e-3", func(r *provider.Request) { r.OutputCompression = intPtr(50) },
			"output_compression", []string{`"50"`, "dall-e-3 does not accept output_compression"}},

		// Moderation and style.
		{"moderation low", "gpt-image-2", func(r *provider.Request) { r.Moderation = "low" }, "", nil},
		{"moderation strict", "gpt-image-2", func(r *provider.Request) { r.Moderation = "strict" },
			"moderation", []string{`"strict"`, "gpt-image-2", "auto, low"}},
		{"moderation on dall-e-3", "dall-e-3", func(r *provider.Request) { r.Moderation = "low" },
			"moderation", []string{`"low"`, "dall-e-3 does not accept moderation"}},
		{"style on dall-e-3", "dall-e-3", func(r *provider.Request) { r.Style = "natural" }, "", nil},
		{"bad style on dall-e-3", "dall-e-3", func(r *provider.Request) { r.Style = "bold" },
			"style", []string{`"bold"`, "dall-e-3", "vivid, natural"}},
		{"style on gpt-image-1", "gpt-image-1", func(r *provider.Request) { r.Style = "vivid" },
			"style", []string{`"vivid"`, "gpt-image-1 does not accept style"}},
		{"style on dall-e-2", "dall-e-2", func(r *provider.Request) { r.Style = "vivid" },
			"style", []string{`"vivid"`, "dall-e-2 does not accept style"}},

		// Unknown models get generic checks only.
		{"unknown model any values", "my-gateway-model", func(r *provider.Request) {
			r.Size = "5x5"
			r.Quality = "ultra"
			r.Style = "vivid"
			r.Background = "transparent"
			r.OutputFormat = "jpeg"
		}, "", nil},
		{"unknown model generic failure", "my-gateway-model", func(r *provider.Request) { r.Size = "5 x 5" },
			"size", []string{`"5 x 5"`}},
		{"unknown model empty prompt", "my-gateway-model", func(r *provider.Request) { r.Prompt = "" },
			"prompt", []string{"empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := validRequest(tt.model)
			tt.modify(req)
			err := c.Validate(req)
			if tt.field == "" {
				assert.NoError(t, err)
				return
			}
			assertValidationError(t, err, tt.field, tt.want...)
		})
	}
}

func TestCatalogValidateCustomModelVocabularies(t *testing.T) {
	c, err := NewCatalog(
		Model{Name: "open"},
		Model{Name: "no-size", Sizes: []string{}},
		Model{Name: "free", FlexibleSize: &SizeRule{Multiple: 8}},
	)
	require.NoError(t, err)

	req := validRequest("open")
	req.Size, req.Quality, req.Style = "3x7", "ultra", "any"
	assert.NoError(t, c.Validate(req), "nil lists are not checked")

	req = validRequest("no-size")
	req.Size = "1024x1024"
	assertValidationError(t, c.Validate(req), "size", "no-size does not accept size")

	req = validRequest("free")
	req.Size = "auto"
	assertValidationError(t, c.Validate(req), "size", "free accepts size WIDTHxHEIGHT with both edges multiples of 8")
	req.Size = "64x40"
	assert.NoError(t, c.Validate(req))
}

func TestCatalogValidateEdit(t *testing.T) {
	c := DefaultCatalog()
	png := provider.File{Name: "photo.png", MediaType: "image/png", Data: []byte{0x89, 'P', 'N', 'G'}}
	edit := func(model string) *provider.EditRequest {
		return &provider.EditRequest{Request: *validRequest(model), Images: []provider.File{png}}
	}

	tests := []struct {
		name   string
		req    *provider.EditRequest
		modify func(*provider.EditRequest)
		field  string
		want   []string
	}{
		{"valid", edit("gpt-image-2"), func(*provider.EditRequest) {}, "", nil},
		{"valid with mask and fidelity", edit("gpt-image-1"), func(r *provider.EditRequest) {
			r.Mask = &png
			r.InputFidelity = "high"
		}, "", nil},
		{"nil", nil, nil, "request", []string{"nil"}},
		{"model without edits", edit("dall-e-3"), func(*provider.EditRequest) {},
			"model", []string{`"dall-e-3"`, "does not support edits"}},
		{"generic check", edit("gpt-image-2"), func(r *provider.EditRequest) { r.Prompt = "" }, "prompt", nil},
		{"model check", edit("gpt-image-1"), func(r *provider.EditRequest) { r.Size = "2048x2048" }, "size", []string{"gpt-image-1"}},
		{"no images", edit("gpt-image-2"), func(r *provider.EditRequest) { r.Images = nil }, "image", []string{"at least one"}},
		{"empty image", edit("gpt-image-2"), func(r *provider.EditRequest) { r.Images[0].Data = nil }, "image", []string{`"photo.png"`, "empty"}},
		{"octet-stream", edit("gpt-image-2"), func(r *provider.EditRequest) {
			r.Images = []provider.File{png, {Data: []byte{1}, MediaType: "application/octet-stream"}}
		}, "image", []string{`"image 2"`, "image/png"}},
		{"mask not png", edit("gpt-image-2"), func(r *provider.EditRequest) {
			r.Mask = &provider.File{Name: "mask.jpg", MediaType: "image/jpeg", Data: []byte{1}}
		}, "mask", []string{`"image/jpeg"`, "PNG"}},
		{"fidelity", edit("gpt-image-2"), func(r *provider.EditRequest) { r.InputFidelity = "medium" },
			"input_fidelity", []string{`"medium"`, `"high" or "low"`}},
		{"moderation", edit("gpt-image-2"), func(r *provider.EditRequest) { r.Moderation = "low" },
			"moderation", []string{"edits do not accept moderation"}},
		{"style on unknown model", edit("my-gateway"), func(r *provider.EditRequest) { r.Style = "vivid" },
			"style", []string{"edits do not accept style"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.modify != nil {
				tt.modify(tt.req)
			}
			err := c.ValidateEdit(tt.req)
			if tt.field == "" {
				assert.NoError(t, err)
				return
			}
			assertValidationError(t, err, tt.field, tt.want...)
		})
	}
}

func BenchmarkCatalogValidate(b *testing.B) {
	c := DefaultCatalog()
	req := validRequest("gpt-image-2-2026-04-21")
	req.Size, req.Quality, req.OutputFormat, req.OutputCompression = "1360x768", "high", "webp", intPtr(80)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Validate(req); err != nil {
			b.Fatal(err)
		}
	}
}
