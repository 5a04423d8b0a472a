package imagegentest

import (
	"bytes"
	"encoding/binary"
	"hash/fnv"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"strconv"
	"strings"
	"sync"
)

// Default image parameters, used when a request leaves the field empty or
// sets it to "auto".
const (
	// DefaultSize is the size of an image whose request has no size or "auto".
	DefaultSize = "1024x1024"
	// DefaultQuality is the quality that "auto" and an empty quality stand for
	// in the usage that Server and FakeProvider report.
	DefaultQuality = "medium"
	// DefaultOutputFormat is the image encoding used when the request names none.
	DefaultOutputFormat = "png"
)

// MaxImageEdge is the largest width or height, in pixels, that Server and
// FakeProvider accept. Any "WxH" with both edges from 1 to MaxImageEdge is
// valid, which is looser than OpenAI's own list of sizes.
const MaxImageEdge = 4096

// imageKey identifies one rendered image. Equal keys render identical bytes.
type imageKey struct {
	prompt      string
	model       string
	width       int
	height      int
	format      string // "png" or "jpeg"
	transparent bool
	compression int // jpeg quality, 1 to 100
	index       int
}

// parseImageSize parses "WxH" and returns the default for "" and "auto".
// ok is false for anything else or an edge outside 1..MaxImageEdge.
func parseImageSize(size string) (width, height int, ok bool) {
	if size == "" || size == "auto" {
		return 1024, 1024, true
	}
	w, h, found := strings.Cut(size, "x")
	if !found {
		return 0, 0, false
	}
	width, errW := strconv.Atoi(w)
	height, errH := strconv.Atoi(h)
	if errW != nil || errH != nil || width < 1 || height < 1 || width > MaxImageEdge || height > MaxImageEdge {
		return 0, 0, false
	}
	return width, height, true
}

// seed returns the 64-bit FNV-1a hash of the key's prompt, model, size and
// index, from which every colour of the image is derived. FNV is fixed across
// processes, unlike hash/maphash, so images are the same in every test run.
func (k imageKey) seed() uint64 {
	h := fnv.New64a()
	var buf [8]byte
	writeField := func(s string) {
		binary.LittleEndian.PutUint64(buf[:], uint64(len(s)))
		h.Write(buf[:])
		h.Write([]byte(s))
	}
	writeField(k.prompt)
	writeField(k.model)
	for _, v := range []int{k.width, k.height, k.index} {
		binary.LittleEndian.PutUint64(buf[:], uint64(v))
		h.Write(buf[:])
	}
	return h.Sum64()
}

// quadrantColors derives four opaque colours from seed with the SplitMix64
// sequence.
func quadrantColors(seed uint64) [4]color.NRGBA {
	var out [4]color.NRGBA
	x := seed
	for i := range out {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		out[i] = color.NRGBA{R: uint8(z), G: uint8(z >> 8), B: uint8(z >> 16), A: 0xff}
	}
	return out
}

// quadrant returns which of the four blocks (0 top left, 1 top right,
// 2 bottom left, 3 bottom right) the pixel at x, y belongs to.
func quadrant(x, y, width, height int) int {
	q := 0
	if x >= width/2 {
		q++
	}
	if y >= height/2 {
		q += 2
	}
	return q
}

// renderImage draws four flat colour blocks derived from the key and encodes
// them. Flat blocks keep rendering cheap: every row is a copy of one of two
// template rows, and long runs of one byte compress fast. A
// transparent PNG has its top-left block fully transparent. pool, which may be
// nil, lends PNG encoder buffers so that their compressor state is reused.
func renderImage(k imageKey, pool png.EncoderBufferPool) ([]byte, error) {
	colors := quadrantColors(k.seed())
	var buf bytes.Buffer
	if k.format == "jpeg" {
		if err := jpeg.Encode(&buf, jpegBlocks(k.width, k.height, colors), &jpeg.Options{Quality: k.compression}); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}

	// image/png copies the rows of an 8-bit paletted image as they are but
	// packs smaller palettes pixel by pixel, which is several times slower.
	// More than 16 entries selects 8 bits; the entries past 4 are unused.
	palette := make(color.Palette, 17)
	for i := range palette {
		palette[i] = colors[min(i, 3)]
	}
	if k.transparent {
		palette[0] = color.NRGBA{}
	}
	img := image.NewPaletted(image.Rect(0, 0, k.width, k.height), palette)
	fillBlocks(img.Pix, img.Stride, k.width, k.height, [4]uint8{0, 1, 2, 3})
	enc := png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: pool}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// fillBlocks sets the width x height plane pix, whose rows are stride bytes
// apart, to the four block values in quadrant order (see quadrant). Only the
// first row of each half is drawn; the other rows copy it.
func fillBlocks(pix []uint8, stride, width, height int, values [4]uint8) {
	halfWidth, halfHeight := width/2, height/2
	for y := range height {
		row := pix[y*stride : y*stride+width]
		if y != 0 && y != halfHeight {
			src := 0
			if y > halfHeight {
				src = halfHeight * stride
			}
			copy(row, pix[src:src+width])
			continue
		}
		left, right := values[0], values[1]
		if y >= halfHeight {
			left, right = values[2], values[3]
		}
		for x := range row {
			if x < halfWidth {
				row[x] = left
			} else {
				row[x] = right
			}
		}
	}
}

// jpegBlocks returns the four blocks as a 4:2:0 YCbCr image, the form that
// image/jpeg encodes without a per-pixel colour conversion.
func jpegBlocks(width, height int, colors [4]color.NRGBA) *image.YCbCr {
	img := image.NewYCbCr(image.Rect(0, 0, width, height), image.YCbCrSubsampleRatio420)
	var ys, cbs, crs [4]uint8
	for i, c := range colors {
		ys[i], cbs[i], crs[i] = color.RGBToYCbCr(c.R, c.G, c.B)
	}
	fillBlocks(img.Y, img.YStride, width, height, ys)
	// A chroma sample covers the 2x2 luma pixels whose top-left corner is at
	// twice its coordinates, so its block is that pixel's block.
	chromaWidth, chromaHeight := (width+1)/2, (height+1)/2
	for cy := range chromaHeight {
		for cx := range chromaWidth {
			q := quadrant(cx*2, cy*2, width, height)
			off := cy*img.CStride + cx
			img.Cb[off], img.Cr[off] = cbs[q], crs[q]
		}
	}
	return img
}

// pngBufferPool is a png.EncoderBufferPool backed by a sync.Pool.
type pngBufferPool struct {
	pool sync.Pool
}

func (p *pngBufferPool) Get() *png.EncoderBuffer {
	b, _ := p.pool.Get().(*png.EncoderBuffer)
	return b
}

func (p *pngBufferPool) Put(b *png.EncoderBuffer) {
	p.pool.Put(b)
}

// imageCacheSize bounds the number of encoded images an imageCache keeps. At
// 1024x1024 pixels an image is about 6 KB as PNG and 18 KB as JPEG, so a full
// cache of that size takes a few megabytes.
const imageCacheSize = 256

// imageCache keeps recently rendered images so that repeated requests, as in
// benchmarks, skip encoding. It evicts the oldest entry when full. Returned
// slices are shared and must not be modified. Safe for concurrent use.
type imageCache struct {
	mu    sync.Mutex
	items map[imageKey][]byte
	ring  [imageCacheSize]imageKey // keys in insertion order, for eviction
	next  int                      // ring slot that the next insertion takes

	buffers pngBufferPool
}

// get returns the encoded image for k, rendering it on a miss. Rendering runs
// outside the lock, so two goroutines may render the same key once each.
func (c *imageCache) get(k imageKey) ([]byte, error) {
	c.mu.Lock()
	data, ok := c.items[k]
	c.mu.Unlock()
	if ok {
		return data, nil
	}

	data, err := renderImage(k, &c.buffers)
	if err != nil {
		return nil, err
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		c.items = make(map[imageKey][]byte, imageCacheSize)
	}
	if cached, ok := c.items[k]; ok {
		return cached, nil
	}
	if len(c.items) >= imageCacheSize {
		delete(c.items, c.ring[c.next])
	}
	c.items[k] = data
	c.ring[c.next] = k
	c.next = (c.next + 1) % imageCacheSize
	return data, nil
}

// mediaTypeOf returns the MIME type of an output format.
func mediaTypeOf(format string) string {
	if format == "jpeg" {
		return "image/jpeg"
	}
	return "image/png"
}
