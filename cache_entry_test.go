package imagegen

import (
	"bytes"
	"encoding/hex"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagegen-go/imagegen/provider"
)

func testImage() image.Image {
	img := image.NewRGBA(image.Rect(0, 0, 4, 3))
	img.Set(1, 1, color.RGBA{R: 200, A: 255})
	return img
}

func testPNG(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, testImage()))
	return buf.Bytes()
}

func testJPEG(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, testImage(), nil))
	return buf.Bytes()
}

func testGIF(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, gif.Encode(&buf, testImage(), nil))
	return buf.Bytes()
}

// testWebP returns a 1x1 lossless WebP, because Go has no WebP encoder.
func testWebP(t testing.TB) []byte {
	t.Helper()
	b, err := hex.DecodeString("524946461a000000574542505650384c0d0000002f00000010071011118888fe0700")
	require.NoError(t, err)
	return b
}

const testSVG = `<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" width="4" height="3"><rect width="4" height="3" fill="red"/></svg>
`

func fullCacheEntry(t testing.TB) *cacheEntry {
	return &cacheEntry{
		Provider: "openai",
		Response: provider.Response{
			Images: []provider.Image{
				{Data: testPNG(t), MediaType: "image/png", RevisedPrompt: "a red fox, revised"},
				{Data: testJPEG(t), MediaType: "image/jpeg"},
			},
			Usage: &provider.Usage{
				InputTokens: 50, InputTextTokens: 40, InputImageTokens: 10,
				OutputTokens: 4160, TotalTokens: 4210,
			},
			Model:        "gpt-image-1",
			RequestID:    "req_123",
			Size:         "1024x1024",
			Quality:      "high",
			Background:   "opaque",
			OutputFormat: "png",
		},
		CreatedAt: time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC),
	}
}

func TestCacheEntryRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		entry *cacheEntry
	}{
		{"full", fullCacheEntry(t)},
		{"zero", &cacheEntry{}},
		{"no usage", &cacheEntry{Provider: "p", Response: provider.Response{
			Images: []provider.Image{{Data: []byte{1}}},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeCacheEntry(encodeCacheEntry(tt.entry))
			require.NoError(t, err)

			assert.True(t, tt.entry.CreatedAt.Equal(got.CreatedAt), "CreatedAt %v, want %v", got.CreatedAt, tt.entry.CreatedAt)
			assert.Equal(t, tt.entry.CreatedAt.IsZero(), got.CreatedAt.IsZero())
			got.CreatedAt = tt.entry.CreatedAt
			assert.Equal(t, tt.entry, got)
		})
	}
}

func TestCacheEntryRateLimitNotStored(t *testing.T) {
	e := &cacheEntry{Response: provider.Response{RateLimit: provider.RateLimit{
		Requests: provider.Quota{Known: true, Limit: 5, Remaining: 1},
	}}}
	got, err := decodeCacheEntry(encodeCacheEntry(e))
	require.NoError(t, err)
	assert.Equal(t, provider.RateLimit{}, got.Response.RateLimit)
}

func TestDecodeCacheEntryAliasesInput(t *testing.T) {
	e := fullCacheEntry(t)
	b := encodeCacheEntry(e)
	got, err := decodeCacheEntry(b)
	require.NoError(t, err)

	bStart := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	bEnd := bStart + uintptr(len(b))
	for i, img := range got.Response.Images {
		p := uintptr(unsafe.Pointer(unsafe.SliceData(img.Data)))
		assert.True(t, p >= bStart && p < bEnd, "image %d data is a copy, want a slice of the input", i)
		assert.Equal(t, len(img.Data), cap(img.Data), "image %d capacity", i)
	}

	// Appending to an image must not overwrite the next field.
	first := got.Response.Images[0].Data
	_ = append(first, 0xAA)
	again, err := decodeCacheEntry(b)
	require.NoError(t, err)
	assert.Equal(t, e.Response.Images[1].MediaType, again.Response.Images[1].MediaType)
}

func TestDecodeCacheEntryCorrupt(t *testing.T) {
	valid := encodeCacheEntry(fullCacheEntry(t))

	tests := []struct {
		name string
		data []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"magic only", []byte(cacheEntryMagic)},
		{"wrong magic", append([]byte("XXXX"), valid[4:]...)},
		{"wrong version", append(append([]byte(cacheEntryMagic), 9), valid[5:]...)},
		{"trailing byte", append(bytes.Clone(valid), 0)},
		{"huge image count", func() []byte {
			b := encodeCacheEntry(&cacheEntry{})
			b = b[:len(b)-1] // drop the zero image count
			return append(b, 0xff, 0xff, 0xff, 0xff, 0x0f)
		}()},
		{"invalid usage flag", func() []byte {
			b := encodeCacheEntry(&cacheEntry{})
			b[len(b)-2] = 7 // the usage flag precedes the image count
			return b
		}()},
		{"non-minimal length", append(append([]byte(cacheEntryMagic), 1, 0, 0, 0, 0, 0, 0, 0, 0),
			0x80, 0x00, 0, 0, 0, 0, 0, 0, 0, 0)},
		{"overlong varint", append(append([]byte(cacheEntryMagic), 1, 0, 0, 0, 0, 0, 0, 0, 0),
			0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeCacheEntry(tt.data)
			assert.ErrorIs(t, err, errCacheEntryCorrupt)
		})
	}

	t.Run("every truncation", func(t *testing.T) {
		for n := range len(valid) {
			_, err := decodeCacheEntry(valid[:n])
			if !assert.ErrorIs(t, err, errCacheEntryCorrupt, "truncated to %d of %d bytes", n, len(valid)) {
				return
			}
		}
	})
}

func FuzzDecodeCacheEntry(f *testing.F) {
	f.Add(encodeCacheEntry(fullCacheEntry(f)))
	f.Add(encodeCacheEntry(&cacheEntry{}))
	f.Add([]byte(cacheEntryMagic))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decodeCacheEntry(data)
		if err != nil {
			require.ErrorIs(t, err, errCacheEntryCorrupt)
			require.Nil(t, e)
			return
		}
		// Whatever decodes must encode back to the same bytes.
		require.Equal(t, data, encodeCacheEntry(e))
	})
}

func TestVerifyCacheable(t *testing.T) {
	pngData := testPNG(t)
	oneImage := func(img provider.Image) *provider.Response {
		return &provider.Response{Images: []provider.Image{img}}
	}

	corruptHeader := bytes.Clone(pngData)
	corruptHeader[16] = 0xff // the width's high byte, past PNG's limit
	corruptHeader[17] = 0xff

	tests := []struct {
		name    string
		resp    *provider.Response
		n       int
		wantErr string
	}{
		{"png", oneImage(provider.Image{Data: pngData, MediaType: "image/png"}), 1, ""},
		{"jpeg", oneImage(provider.Image{Data: testJPEG(t), MediaType: "image/jpeg"}), 1, ""},
		{"gif", oneImage(provider.Image{Data: testGIF(t), MediaType: "image/gif"}), 1, ""},
		{"webp", oneImage(provider.Image{Data: testWebP(t), MediaType: "image/webp"}), 1, ""},
		{"svg", oneImage(provider.Image{Data: []byte(testSVG), MediaType: "image/svg+xml"}), 1, ""},
		{"media type omitted", oneImage(provider.Image{Data: pngData}), 1, ""},
		{"media type with parameter", oneImage(provider.Image{Data: pngData, MediaType: "image/png; x=y"}), 1, ""},
		{"n zero means one", oneImage(provider.Image{Data: pngData}), 0, ""},
		{"two images", &provider.Response{Images: []provider.Image{{Data: pngData}, {Data: testGIF(t)}}}, 2, ""},

		{"nil response", nil, 1, "nil response"},
		{"no images", &provider.Response{}, 1, "has 0 images, want 1"},
		{"fewer than n", oneImage(provider.Image{Data: pngData}), 2, "has 1 images, want 2"},
		{"more than n", &provider.Response{Images: []provider.Image{{Data: pngData}, {Data: pngData}}}, 1, "has 2 images, want 1"},
		{"missing data", &provider.Response{Images: []provider.Image{{Data: pngData}, {MediaType: "image/png"}}}, 2, "image 1: no image data"},
		{"random bytes", oneImage(provider.Image{Data: []byte("not an image at all")}), 1, "unknown image format"},
		{"truncated png", oneImage(provider.Image{Data: pngData[:len(pngData)-5]}), 1, "truncated image/png"},
		{"png header only", oneImage(provider.Image{Data: pngData[:8]}), 1, "undecodable image/png"},
		{"corrupt png header", oneImage(provider.Image{Data: corruptHeader}), 1, "undecodable image/png"},
		{"truncated jpeg", oneImage(provider.Image{Data: testJPEG(t)[:len(testJPEG(t))-10]}), 1, "truncated image/jpeg"},
		{"truncated webp", oneImage(provider.Image{Data: testWebP(t)[:30]}), 1, "image/webp"},
		{"truncated svg", oneImage(provider.Image{Data: []byte(testSVG[:60])}), 1, "invalid SVG"},
		{"html not svg", oneImage(provider.Image{Data: []byte("<html><body/></html>")}), 1, `root element is "html"`},
		{"media type mismatch", oneImage(provider.Image{Data: pngData, MediaType: "image/jpeg"}), 1, `media type "image/jpeg" does not match the image/png data`},
		{"bmp unsupported", oneImage(provider.Image{Data: append([]byte("BM"), make([]byte, 60)...)}), 1, "unknown image format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verifyCacheable(tt.resp, tt.n)
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.Contains(t, err.Error(), "imagegen: not cacheable")
		})
	}
}
