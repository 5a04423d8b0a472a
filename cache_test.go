package imagegen

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagegen-go/imagegen/provider"
)

var cacheKeyPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// baseKeyRequest returns a request that sets every field the key covers to a
// value other than its default.
func baseKeyRequest() *provider.Request {
	return &provider.Request{
		Prompt:            "a red fox in the snow",
		Model:             "gpt-image-1",
		N:                 2,
		Size:              "1024x1536",
		Quality:           "high",
		Background:        "opaque",
		OutputFormat:      "jpeg",
		OutputCompression: intPtr(80),
		Moderation:        "low",
		Style:             "vivid",
		SafetyIdentifier:  "user-hash-42",
		Extra:             map[string]any{"seed": 7, "options": map[string]any{"b": 2, "a": 1}},
	}
}

func baseEditRequest() *provider.EditRequest {
	return &provider.EditRequest{
		Request: *baseKeyRequest(),
		Images: []provider.File{
			{Name: "one.png", MediaType: "image/png", Data: []byte("first image")},
			{Name: "two.png", MediaType: "image/png", Data: []byte("second image")},
		},
		Mask:          &provider.File{Name: "mask.png", MediaType: "image/png", Data: []byte("mask")},
		InputFidelity: "high",
	}
}

func TestCacheKeyGolden(t *testing.T) {
	// These values must not change between runs or releases: a change makes
	// every stored entry unreachable. Change cacheKeyVersion and these values
	// together, on purpose only.
	assert.Equal(t, "2c1f67987dea64a83e6822304441495888d1186694979043809a8ed61dcd0095", CacheKey("tenant-a", baseKeyRequest()))
	assert.Equal(t, "bb0faa2b55a4d23686ed16ea9f08c7e226588aae1413c99c2493a1554b94117b", CacheKeyEdit("tenant-a", baseEditRequest()))
	assert.Equal(t, "40b55fe904386ab8949146b6a8622f7c818f8480819991b7e45f8ec8fe95e5b8", CacheKey("", &provider.Request{Prompt: "a cat"}))
}

func TestCacheKeyEncoding(t *testing.T) {
	// The documented encoding, rebuilt by hand: each field is its length as
	// 8 big-endian bytes followed by its bytes, numbers are 8 big-endian
	// bytes, and omitted values are replaced by their defaults.
	var b []byte
	field := func(v []byte) {
		b = binary.BigEndian.AppendUint64(b, uint64(len(v)))
		b = append(b, v...)
	}
	number := func(v int64) { field(binary.BigEndian.AppendUint64(nil, uint64(v))) }
	field([]byte("imagegen/cache-key/v1"))
	field([]byte("tenant"))    // namespace
	field([]byte("generate"))  // operation
	field([]byte("a red fox")) // normalized prompt
	field([]byte("m"))         // model
	number(1)                  // n
	field([]byte("auto"))      // size
	field([]byte("auto"))      // quality
	field([]byte("auto"))      // background
	field([]byte("png"))       // output format
	number(100)                // output compression
	field([]byte("auto"))      // moderation
	field(nil)                 // style
	field(nil)                 // extra
	sum := sha256.Sum256(b)

	req := &provider.Request{Prompt: " a  red\tfox ", Model: "m"}
	assert.Equal(t, hex.EncodeToString(sum[:]), CacheKey("tenant", req))
}

func TestCacheKeyFormat(t *testing.T) {
	req := baseKeyRequest()
	key := CacheKey("tenant-secret-name", req)
	assert.Regexp(t, cacheKeyPattern, key)
	for _, clear := range []string{req.Prompt, "red", "fox", "tenant-secret-name", req.SafetyIdentifier, req.Model} {
		assert.NotContains(t, key, clear)
	}
	assert.Regexp(t, cacheKeyPattern, CacheKeyEdit("tenant", baseEditRequest()))
}

func TestCacheKeySensitivity(t *testing.T) {
	tests := []struct {
		name   string
		change func(ns *string, r *provider.Request)
	}{
		{"namespace", func(ns *string, r *provider.Request) { *ns = "tenant-b" }},
		{"empty namespace", func(ns *string, r *provider.Request) { *ns = "" }},
		{"prompt word", func(ns *string, r *provider.Request) { r.Prompt = "a red fox in the rain" }},
		{"prompt case", func(ns *string, r *provider.Request) { r.Prompt = "A red fox in the snow" }},
		{"prompt punctuation", func(ns *string, r *provider.Request) { r.Prompt = "a red fox in the snow." }},
		{"prompt joined words", func(ns *string, r *provider.Request) { r.Prompt = "a redfox in the snow" }},
		{"model", func(ns *string, r *provider.Request) { r.Model = "gpt-image-2" }},
		{"n", func(ns *string, r *provider.Request) { r.N = 3 }},
		{"size", func(ns *string, r *provider.Request) { r.Size = "1024x1024" }},
		{"quality", func(ns *string, r *provider.Request) { r.Quality = "low" }},
		{"background", func(ns *string, r *provider.Request) { r.Background = "transparent" }},
		{"output format", func(ns *string, r *provider.Request) { r.OutputFormat = "webp" }},
		{"output format case", func(ns *string, r *provider.Request) { r.OutputFormat = "JPEG" }},
		{"compression", func(ns *string, r *provider.Request) { r.OutputCompression = intPtr(81) }},
		{"compression default", func(ns *string, r *provider.Request) { r.OutputCompression = nil }},
		{"moderation", func(ns *string, r *provider.Request) { r.Moderation = "auto" }},
		{"style", func(ns *string, r *provider.Request) { r.Style = "natural" }},
		{"extra value", func(ns *string, r *provider.Request) { r.Extra["seed"] = 8 }},
		{"extra nested value", func(ns *string, r *provider.Request) { r.Extra["options"] = map[string]any{"b": 2, "a": 2} }},
		{"extra key", func(ns *string, r *provider.Request) { r.Extra["steps"] = 30 }},
		{"extra removed", func(ns *string, r *provider.Request) { r.Extra = nil }},
	}

	base := CacheKey("tenant-a", baseKeyRequest())
	seen := map[string]string{base: "base"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, req := "tenant-a", baseKeyRequest()
			tt.change(&ns, req)
			key := CacheKey(ns, req)
			assert.NotEqual(t, base, key)
			if other, dup := seen[key]; dup {
				t.Errorf("key equals the key of change %q", other)
			}
			seen[key] = tt.name
		})
	}
}

func TestCacheKeyDefaults(t *testing.T) {
	tests := []struct {
		name string
		a, b provider.Request
	}{
		{"size auto", provider.Request{Size: ""}, provider.Request{Size: "auto"}},
		{"quality auto", provider.Request{Quality: ""}, provider.Request{Quality: "auto"}},
		{"background auto", provider.Request{Background: ""}, provider.Request{Background: "auto"}},
		{"moderation auto", provider.Request{Moderation: ""}, provider.Request{Moderation: "auto"}},
		{"format png", provider.Request{OutputFormat: ""}, provider.Request{OutputFormat: "png"}},
		{"compression 100", provider.Request{}, provider.Request{OutputCompression: intPtr(100)}},
		{"n one", provider.Request{N: 0}, provider.Request{N: 1}},
		{"extra empty", provider.Request{Extra: nil}, provider.Request{Extra: map[string]any{}}},
		{"safety identifier ignored", provider.Request{}, provider.Request{SafetyIdentifier: "user-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.a.Prompt, tt.b.Prompt = "a cat", "a cat"
			assert.Equal(t, CacheKey("ns", &tt.a), CacheKey("ns", &tt.b))
		})
	}

	t.Run("extra key order", func(t *testing.T) {
		a := map[string]any{}
		b := map[string]any{}
		for i := range 50 {
			a[string(rune('a'+i%26))+strings.Repeat("x", i)] = i
		}
		for i := 49; i >= 0; i-- {
			b[string(rune('a'+i%26))+strings.Repeat("x", i)] = i
		}
		ra := &provider.Request{Prompt: "p", Extra: a}
		rb := &provider.Request{Prompt: "p", Extra: b}
		assert.Equal(t, CacheKey("", ra), CacheKey("", rb))
	})

	t.Run("defaults differ from other values", func(t *testing.T) {
		auto := CacheKey("", &provider.Request{Prompt: "p"})
		assert.NotEqual(t, auto, CacheKey("", &provider.Request{Prompt: "p", Size: "AUTO"}))
		assert.NotEqual(t, auto, CacheKey("", &provider.Request{Prompt: "p", OutputCompression: intPtr(0)}))
		assert.NotEqual(t, auto, CacheKey("", &provider.Request{Prompt: "p", N: 2}))
	})
}

func TestCacheKeyPromptWhitespace(t *testing.T) {
	want := CacheKey("", &provider.Request{Prompt: "a red fox"})
	variants := []string{
		"  a red fox",
		"a red fox \n",
		"a  red   fox",
		"a\tred\r\nfox",
		"a\u00a0red\u3000fox",   // no-break and ideographic spaces
		"a\u2003red\u2028fox",   // em space and line separator
		"\v\fa red\u0085fox\t ", // vertical tab, form feed, next line
	}
	for _, prompt := range variants {
		t.Run(strings.ToValidUTF8(prompt, "?"), func(t *testing.T) {
			assert.Equal(t, want, CacheKey("", &provider.Request{Prompt: prompt}))
		})
	}

	t.Run("case kept", func(t *testing.T) {
		assert.NotEqual(t,
			CacheKey("", &provider.Request{Prompt: "OPEN"}),
			CacheKey("", &provider.Request{Prompt: "open"}))
	})
	t.Run("zero width space is not white space", func(t *testing.T) {
		assert.NotEqual(t, want, CacheKey("", &provider.Request{Prompt: "a red\u200bfox"}))
	})
	t.Run("invalid UTF-8 kept apart", func(t *testing.T) {
		assert.NotEqual(t,
			CacheKey("", &provider.Request{Prompt: "a\xffb"}),
			CacheKey("", &provider.Request{Prompt: "a\xfeb"}))
	})
	t.Run("blank prompt equals empty", func(t *testing.T) {
		assert.Equal(t,
			CacheKey("", &provider.Request{Prompt: ""}),
			CacheKey("", &provider.Request{Prompt: " \t\n "}))
	})
}

func TestCacheKeyFieldBoundaries(t *testing.T) {
	tests := []struct {
		name   string
		nsA    string
		a      provider.Request
		nsB    string
		b      provider.Request
		differ bool
	}{
		{
			name: "namespace into prompt",
			nsA:  "ab", a: provider.Request{Prompt: "c"},
			nsB: "a", b: provider.Request{Prompt: "bc"},
		},
		{
			name: "model into style",
			a:    provider.Request{Prompt: "p", Model: "ab", Style: ""},
			b:    provider.Request{Prompt: "p", Model: "a", Style: "b"},
		},
		{
			name: "prompt into model",
			a:    provider.Request{Prompt: "p m", Model: ""},
			b:    provider.Request{Prompt: "p", Model: " m"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.NotEqual(t, CacheKey(tt.nsA, &tt.a), CacheKey(tt.nsB, &tt.b))
		})
	}
}

func TestCacheKeyNilRequest(t *testing.T) {
	assert.Equal(t, CacheKey("ns", &provider.Request{}), CacheKey("ns", nil))
	assert.Equal(t, CacheKeyEdit("ns", &provider.EditRequest{}), CacheKeyEdit("ns", nil))
}

func TestCacheKeyEdit(t *testing.T) {
	base := CacheKeyEdit("tenant-a", baseEditRequest())

	t.Run("differs from generate", func(t *testing.T) {
		req := &provider.EditRequest{Request: provider.Request{Prompt: "p"}}
		assert.NotEqual(t, CacheKey("", &req.Request), CacheKeyEdit("", req))
	})

	changes := []struct {
		name   string
		change func(r *provider.EditRequest)
	}{
		{"image data", func(r *provider.EditRequest) { r.Images[0].Data = []byte("other image") }},
		{"image media type", func(r *provider.EditRequest) { r.Images[0].MediaType = "image/jpeg" }},
		{"image order", func(r *provider.EditRequest) { r.Images[0], r.Images[1] = r.Images[1], r.Images[0] }},
		{"image removed", func(r *provider.EditRequest) { r.Images = r.Images[:1] }},
		{"mask removed", func(r *provider.EditRequest) { r.Mask = nil }},
		{"mask data", func(r *provider.EditRequest) { r.Mask.Data = []byte("other mask") }},
		{"mask moved to images", func(r *provider.EditRequest) {
			r.Images = append(r.Images, *r.Mask)
			r.Mask = nil
		}},
		{"input fidelity", func(r *provider.EditRequest) { r.InputFidelity = "low" }},
		{"input fidelity default", func(r *provider.EditRequest) { r.InputFidelity = "" }},
		{"prompt", func(r *provider.EditRequest) { r.Prompt = "a blue fox" }},
	}
	for _, tt := range changes {
		t.Run(tt.name, func(t *testing.T) {
			req := baseEditRequest()
			tt.change(req)
			assert.NotEqual(t, base, CacheKeyEdit("tenant-a", req))
		})
	}

	t.Run("file names ignored", func(t *testing.T) {
		req := baseEditRequest()
		req.Images[0].Name = "renamed.png"
		req.Mask.Name = "renamed-mask.png"
		assert.Equal(t, base, CacheKeyEdit("tenant-a", req))
	})
	t.Run("namespace", func(t *testing.T) {
		assert.NotEqual(t, base, CacheKeyEdit("tenant-b", baseEditRequest()))
	})
}

func TestCachePolicy(t *testing.T) {
	tests := []struct {
		policy CachePolicy
		name   string
		reads  bool
		writes bool
	}{
		{CacheUse, "use", true, true},
		{CacheBypass, "bypass", false, false},
		{CacheRefresh, "refresh", false, true},
		{CacheReadOnly, "read_only", true, false},
		{CachePolicy(42), "cache_policy(42)", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.name, tt.policy.String())
			assert.Equal(t, tt.reads, tt.policy.readsCache())
			assert.Equal(t, tt.writes, tt.policy.writesCache())
		})
	}
	var zero CachePolicy
	assert.Equal(t, CacheUse, zero)
}

func FuzzCacheKey(f *testing.F) {
	f.Add("a red fox", "tenant")
	f.Add("  leading and trailing  ", "")
	f.Add("tabs\tand\nnewlines\r\n", "ns")
	f.Add("wide\u3000space\u00a0nbsp", "ns")
	f.Add("invalid \xff\xfe utf8", "\x00")
	f.Add("", "")

	f.Fuzz(func(t *testing.T, prompt, namespace string) {
		key := CacheKey(namespace, &provider.Request{Prompt: prompt})
		require.Regexp(t, cacheKeyPattern, key)

		// Collapsing, widening or replacing white space never changes the key.
		collapsed := strings.Join(strings.Fields(prompt), " ")
		require.Equal(t, key, CacheKey(namespace, &provider.Request{Prompt: collapsed}))

		widened := "\t " + strings.ReplaceAll(collapsed, " ", " \n\u3000\u00a0") + "\r\n"
		require.Equal(t, key, CacheKey(namespace, &provider.Request{Prompt: widened}))

		// The same prompt in an edit request, or in another namespace, gives
		// another key.
		require.NotEqual(t, key, CacheKeyEdit(namespace, &provider.EditRequest{Request: provider.Request{Prompt: prompt}}))
		require.NotEqual(t, key, CacheKey(namespace+"x", &provider.Request{Prompt: prompt}))
	})
}
