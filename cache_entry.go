package imagegen

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"mime"
	"time"

	"golang.org/x/image/webp"

	"github.com/imagegen-go/imagegen/provider"
)

// cacheEntry is the Client's stored record of one successful call.
//
// Response.RateLimit is not stored, because a quota reported at write time
// does not describe the quota when the entry is read.
type cacheEntry struct {
	// Provider is the name of the provider that produced the response.
	Provider string
	// Response holds the images and what the service reported with them.
	Response provider.Response
	// CreatedAt is when the response was received.
	CreatedAt time.Time
}

// The entry encoding is:
//
//	magic "IGCE", version byte 1
//	created at: Unix nanoseconds, int64 big-endian, 0 for the zero time
//	strings, each a uvarint length and bytes: provider, model, request id,
//	    size, quality, background, output format
//	usage: one byte 0 (nil) or 1, then five int64 big-endian: input,
//	    input text, input image, output and total tokens
//	image count: uvarint
//	per image: media type and revised prompt as strings, data as a uvarint
//	    length and bytes
//
// Nothing may follow the last image. The encoding has no checksum: the disk
// cache adds its own, and the memory and Redis caches hold the bytes as they
// were written.
const (
	cacheEntryMagic   = "IGCE"
	cacheEntryVersion = 1
)

var errCacheEntryCorrupt = errors.New("imagegen: corrupt cache entry")

// encodeCacheEntry returns the encoding of e, which decodeCacheEntry reads.
func encodeCacheEntry(e *cacheEntry) []byte {
	resp := &e.Response
	size := len(cacheEntryMagic) + 1 + 8 + 1 + 5*8 + binary.MaxVarintLen64
	for _, s := range []string{e.Provider, resp.Model, resp.RequestID, resp.Size, resp.Quality, resp.Background, resp.OutputFormat} {
		size += binary.MaxVarintLen64 + len(s)
	}
	for i := range resp.Images {
		img := &resp.Images[i]
		size += 3*binary.MaxVarintLen64 + len(img.MediaType) + len(img.RevisedPrompt) + len(img.Data)
	}

	b := make([]byte, 0, size)
	b = append(b, cacheEntryMagic...)
	b = append(b, cacheEntryVersion)
	var created int64
	if !e.CreatedAt.IsZero() {
		created = e.CreatedAt.UnixNano()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(created))

	for _, s := range []string{e.Provider, resp.Model, resp.RequestID, resp.Size, resp.Quality, resp.Background, resp.OutputFormat} {
		b = appendCacheEntryString(b, s)
	}

	if resp.Usage == nil {
		b = append(b, 0)
	} else {
		u := resp.Usage
		b = append(b, 1)
		for _, v := range []int64{u.InputTokens, u.InputTextTokens, u.InputImageTokens, u.OutputTokens, u.TotalTokens} {
			b = binary.BigEndian.AppendUint64(b, uint64(v))
		}
	}

	b = binary.AppendUvarint(b, uint64(len(resp.Images)))
	for i := range resp.Images {
		img := &resp.Images[i]
		b = appendCacheEntryString(b, img.MediaType)
		b = appendCacheEntryString(b, img.RevisedPrompt)
		b = binary.AppendUvarint(b, uint64(len(img.Data)))
		b = append(b, img.Data...)
	}
	return b
}

func appendCacheEntryString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeCacheEntry reads an entry written by encodeCacheEntry. The images'
// Data are slices of b, not copies, so b must not be modified while the entry
// is in use. Each Data slice has its capacity cut to its length, so appending
// to it copies instead of overwriting the next field. Malformed input returns
// an error that matches errCacheEntryCorrupt.
func decodeCacheEntry(b []byte) (*cacheEntry, error) {
	d := cacheEntryDecoder{b: b}
	if !bytes.HasPrefix(b, []byte(cacheEntryMagic)) {
		return nil, fmt.Errorf("%w: missing magic bytes", errCacheEntryCorrupt)
	}
	d.off = len(cacheEntryMagic)
	if version := d.readByte(); version != cacheEntryVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", errCacheEntryCorrupt, version, cacheEntryVersion)
	}

	e := &cacheEntry{}
	if created := int64(d.readUint64()); created != 0 {
		e.CreatedAt = time.Unix(0, created)
	}

	resp := &e.Response
	e.Provider = d.readString()
	resp.Model = d.readString()
	resp.RequestID = d.readString()
	resp.Size = d.readString()
	resp.Quality = d.readString()
	resp.Background = d.readString()
	resp.OutputFormat = d.readString()

	switch d.readByte() {
	case 0:
	case 1:
		resp.Usage = &provider.Usage{
			InputTokens:      int64(d.readUint64()),
			InputTextTokens:  int64(d.readUint64()),
			InputImageTokens: int64(d.readUint64()),
			OutputTokens:     int64(d.readUint64()),
			TotalTokens:      int64(d.readUint64()),
		}
	default:
		d.fail("invalid usage flag")
	}

	// Every image takes at least three bytes, which bounds the count before
	// anything is allocated for it.
	count := d.readUvarint()
	if d.err == nil && count > uint64(len(b)-d.off)/3 {
		d.fail(fmt.Sprintf("image count %d exceeds the remaining %d bytes", count, len(b)-d.off))
	}
	if d.err == nil && count > 0 {
		resp.Images = make([]provider.Image, count)
		for i := range resp.Images {
			img := &resp.Images[i]
			img.MediaType = d.readString()
			img.RevisedPrompt = d.readString()
			img.Data = d.readBytes()
		}
	}

	if d.err == nil && d.off != len(b) {
		d.fail(fmt.Sprintf("%d trailing bytes", len(b)-d.off))
	}
	if d.err != nil {
		return nil, d.err
	}
	return e, nil
}

// cacheEntryDecoder reads fields from b. After the first failure every read
// returns a zero value and err keeps that failure.
type cacheEntryDecoder struct {
	b   []byte
	off int
	err error
}

func (d *cacheEntryDecoder) fail(reason string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at byte %d", errCacheEntryCorrupt, reason, d.off)
	}
}

func (d *cacheEntryDecoder) readByte() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.fail("unexpected end")
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *cacheEntryDecoder) readUint64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b)-d.off < 8 {
		d.fail("unexpected end")
		return 0
	}
	v := binary.BigEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v
}

func (d *cacheEntryDecoder) readUvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("invalid length")
		return 0
	}
	// A final zero byte after others encodes the value in more bytes than
	// needed. Rejecting it keeps one encoding per entry.
	if n > 1 && d.b[d.off+n-1] == 0 {
		d.fail("overlong length")
		return 0
	}
	d.off += n
	return v
}

func (d *cacheEntryDecoder) readBytes() []byte {
	n := d.readUvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail(fmt.Sprintf("length %d exceeds the remaining %d bytes", n, len(d.b)-d.off))
		return nil
	}
	end := d.off + int(n)
	v := d.b[d.off:end:end]
	d.off = end
	return v
}

func (d *cacheEntryDecoder) readString() string {
	return string(d.readBytes())
}

// verifyCacheable returns an error unless resp holds exactly n images (n of 0
// or less means 1), each a complete image in a format it can check.
//
// The formats are PNG, JPEG, GIF, WebP and SVG. For the raster formats the
// header must decode (image.DecodeConfig of the format's package) to a
// non-empty image and the data must end the way the format ends (PNG's IEND
// chunk, JPEG's EOI marker, GIF's trailer, WebP's RIFF length). That catches
// truncation without decoding the pixels, so damaged pixel data inside a
// complete file still passes. SVG must be well-formed XML whose root element
// is svg. Any other format is not verifiable and so never cached. A non-empty
// MediaType must name the format found in Data.
func verifyCacheable(resp *provider.Response, n int) error {
	if resp == nil {
		return errors.New("imagegen: not cacheable: nil response")
	}
	if n <= 0 {
		n = 1
	}
	if len(resp.Images) != n {
		return fmt.Errorf("imagegen: not cacheable: response has %d images, want %d", len(resp.Images), n)
	}
	for i := range resp.Images {
		if err := verifyCacheableImage(&resp.Images[i]); err != nil {
			return fmt.Errorf("imagegen: not cacheable: image %d: %w", i, err)
		}
	}
	return nil
}

// cacheImageFormat is one image format that verifyCacheable can check.
type cacheImageFormat struct {
	mediaType    string
	decodeConfig func(io.Reader) (image.Config, error)
	complete     func(data []byte) bool
}

var (
	pngSignature  = []byte("\x89PNG\r\n\x1a\n")
	pngIENDChunk  = []byte("\x00\x00\x00\x00IEND\xae\x42\x60\x82")
	jpegSignature = []byte{0xff, 0xd8, 0xff}
	jpegEOI       = []byte{0xff, 0xd9}
)

func sniffCacheImageFormat(data []byte) (cacheImageFormat, bool) {
	switch {
	case bytes.HasPrefix(data, pngSignature):
		return cacheImageFormat{"image/png", png.DecodeConfig, func(b []byte) bool {
			return bytes.HasSuffix(b, pngIENDChunk)
		}}, true
	case bytes.HasPrefix(data, jpegSignature):
		return cacheImageFormat{"image/jpeg", jpeg.DecodeConfig, func(b []byte) bool {
			return bytes.HasSuffix(b, jpegEOI)
		}}, true
	case bytes.HasPrefix(data, []byte("GIF87a")) || bytes.HasPrefix(data, []byte("GIF89a")):
		return cacheImageFormat{"image/gif", gif.DecodeConfig, func(b []byte) bool {
			return b[len(b)-1] == 0x3b
		}}, true
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		return cacheImageFormat{"image/webp", webp.DecodeConfig, func(b []byte) bool {
			return uint64(binary.LittleEndian.Uint32(b[4:8]))+8 == uint64(len(b))
		}}, true
	}
	return cacheImageFormat{}, false
}

func verifyCacheableImage(img *provider.Image) error {
	if len(img.Data) == 0 {
		return errors.New("no image data")
	}

	format, ok := sniffCacheImageFormat(img.Data)
	if !ok {
		if !looksLikeSVG(img.Data) {
			return errors.New("unknown image format")
		}
		if err := verifySVG(img.Data); err != nil {
			return err
		}
		format = cacheImageFormat{mediaType: "image/svg+xml"}
	} else {
		cfg, err := format.decodeConfig(bytes.NewReader(img.Data))
		if err != nil {
			return fmt.Errorf("undecodable %s: %w", format.mediaType, err)
		}
		if cfg.Width <= 0 || cfg.Height <= 0 {
			return fmt.Errorf("%s has empty size %dx%d", format.mediaType, cfg.Width, cfg.Height)
		}
		if !format.complete(img.Data) {
			return fmt.Errorf("truncated %s: missing end marker", format.mediaType)
		}
	}

	if img.MediaType != "" {
		mediaType, _, err := mime.ParseMediaType(img.MediaType)
		if err != nil || mediaType != format.mediaType {
			return fmt.Errorf("media type %q does not match the %s data", img.MediaType, format.mediaType)
		}
	}
	return nil
}

// looksLikeSVG reports whether data starts like an XML document, after an
// optional byte order mark and white space.
func looksLikeSVG(data []byte) bool {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	data = bytes.TrimLeft(data, " \t\r\n")
	return len(data) > 0 && data[0] == '<'
}

// verifySVG returns an error unless data is well-formed XML with one root
// element named svg.
func verifySVG(data []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(data))
	depth := 0
	roots := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("invalid SVG: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
				if t.Name.Local != "svg" {
					return fmt.Errorf("invalid SVG: root element is %q", t.Name.Local)
				}
			}
			depth++
		case xml.EndElement:
			depth--
		}
	}
	if roots != 1 || depth != 0 {
		return errors.New("invalid SVG: want exactly one complete svg element")
	}
	return nil
}
