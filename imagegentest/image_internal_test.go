package imagegentest

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseImageSize(t *testing.T) {
	tests := []struct {
		in         string
		wantWidth  int
		wantHeight int
		wantOK     bool
	}{
		{"", 1024, 1024, true},
		{"auto", 1024, 1024, true},
		{"1536x1024", 1536, 1024, true},
		{"1x1", 1, 1, true},
		{"4096x4096", 4096, 4096, true},
		{"4097x1", 0, 0, false},
		{"0x10", 0, 0, false},
		{"-1x10", 0, 0, false},
		{"1024", 0, 0, false},
		{"1024X1024", 0, 0, false},
		{"axb", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			w, h, ok := parseImageSize(tt.in)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.wantWidth, w)
			assert.Equal(t, tt.wantHeight, h)
		})
	}
}

func TestRenderImageBlocks(t *testing.T) {
	k := imageKey{prompt: "p", model: "m", width: 9, height: 7, format: "png", compression: 100}
	data, err := renderImage(k, nil)
	require.NoError(t, err)
	img, _, err := image.Decode(bytes.NewReader(data))
	require.NoError(t, err)

	colors := quadrantColors(k.seed())
	for y := range 7 {
		for x := range 9 {
			want := colors[quadrant(x, y, 9, 7)]
			require.Equal(t, want, color.NRGBAModel.Convert(img.At(x, y)), "pixel %d,%d", x, y)
		}
	}
}

func TestRenderImageOddJPEG(t *testing.T) {
	data, err := renderImage(imageKey{prompt: "p", width: 3, height: 5, format: "jpeg", compression: 1}, nil)
	require.NoError(t, err)

	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	require.NoError(t, err)
	assert.Equal(t, "jpeg", format)
	assert.Equal(t, 3, cfg.Width)
	assert.Equal(t, 5, cfg.Height)
}

func TestImageCacheEvicts(t *testing.T) {
	var c imageCache
	first := imageKey{prompt: "0", width: 2, height: 2, format: "png"}
	for i := range imageCacheSize + 10 {
		_, err := c.get(imageKey{prompt: fmt.Sprint(i), width: 2, height: 2, format: "png"})
		require.NoError(t, err)
	}

	assert.Len(t, c.items, imageCacheSize)
	_, cached := c.items[first]
	assert.False(t, cached, "the oldest entry is evicted")
}

func TestImageCacheConcurrent(t *testing.T) {
	var c imageCache
	var wg sync.WaitGroup
	results := make([][]byte, 8)
	for i := range results {
		wg.Go(func() {
			data, err := c.get(imageKey{prompt: "same", width: 16, height: 16, format: "png"})
			assert.NoError(t, err)
			results[i] = data
		})
	}
	wg.Wait()

	for _, r := range results[1:] {
		assert.Equal(t, results[0], r)
	}
}

func TestTokenFormulas(t *testing.T) {
	assert.Equal(t, int64(272), OutputTokens("low", 1024, 1024))
	assert.Equal(t, int64(1568), OutputTokens("auto", 1536, 1024))
	assert.Equal(t, int64(6208), OutputTokens("hd", 1536, 1024))
	assert.Equal(t, int64(4160*4), OutputTokens("max", 2048, 2048))
	assert.Equal(t, int64(1), OutputTokens("low", 1, 1), "at least one token")

	assert.Equal(t, int64(1), TextTokens(""))
	assert.Equal(t, int64(1), TextTokens("abcd"))
	assert.Equal(t, int64(2), TextTokens("abcde"))

	assert.Equal(t, int64(765), ImageTokens(1024, 1024), "768x768 after scaling: 4 tiles")
	assert.Equal(t, int64(255), ImageTokens(512, 512), "one tile")
	assert.Equal(t, int64(1105), ImageTokens(2048, 4096), "768x1536 after scaling: 6 tiles")
	assert.Zero(t, ImageTokens(0, 10))
}

func BenchmarkRenderImage(b *testing.B) {
	for _, k := range []imageKey{
		{prompt: "p", width: 1024, height: 1024, format: "png", compression: 100},
		{prompt: "p", width: 1024, height: 1024, format: "jpeg", compression: 100},
		{prompt: "p", width: 64, height: 64, format: "png", compression: 100},
	} {
		b.Run(fmt.Sprintf("%s_%dx%d", k.format, k.width, k.height), func(b *testing.B) {
			var pool pngBufferPool
			b.ReportAllocs()
			for b.Loop() {
				if _, err := renderImage(k, &pool); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
