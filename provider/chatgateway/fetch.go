package chatgateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/imagegen-go/imagegen/internal/httpx"
	"github.com/imagegen-go/imagegen/provider"
)

// errTooLarge marks a body or image over its size limit.
var errTooLarge = httpx.ErrTooLarge

// fetchImage returns the image that ref points to: a data URL is decoded,
// an http or https URL is downloaded, and any other scheme is rejected.
func (p *Provider) fetchImage(ctx context.Context, ref string) (provider.Image, error) {
	scheme, _, _ := strings.Cut(ref, ":")
	switch strings.ToLower(scheme) {
	case "data":
		return p.decodeDataURL(ref)
	case "http", "https":
		return p.download(ctx, ref)
	}
	return provider.Image{}, fmt.Errorf("image URL with scheme %q rejected: only data, http and https URLs are read", scheme)
}

// decodeDataURL decodes a base64 data URL such as "data:image/png;base64,…".
func (p *Provider) decodeDataURL(ref string) (provider.Image, error) {
	header, payload, ok := strings.Cut(ref[len("data:"):], ",")
	if !ok {
		return provider.Image{}, errors.New("data URL has no comma before its data")
	}
	declared, params, _ := strings.Cut(header, ";")
	if !strings.HasSuffix(";"+params, ";base64") {
		return provider.Image{}, fmt.Errorf("data URL of type %q is not base64-encoded: only base64 data URLs are read", declared)
	}

	payload = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, payload)
	if int64(base64.StdEncoding.DecodedLen(len(payload))) > p.maxImageBytes+2 {
		return provider.Image{}, fmt.Errorf("data URL image of about %d bytes is %w of %d bytes (MaxImageBytes)",
			base64.StdEncoding.DecodedLen(len(payload)), errTooLarge, p.maxImageBytes)
	}

	var data []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if data, err = enc.DecodeString(payload); err == nil {
			break
		}
	}
	if err != nil {
		return provider.Image{}, fmt.Errorf("data URL is not valid base64: %w", err)
	}
	if int64(len(data)) > p.maxImageBytes {
		return provider.Image{}, fmt.Errorf("data URL image of %d bytes is %w of %d bytes (MaxImageBytes)", len(data), errTooLarge, p.maxImageBytes)
	}
	return newImage(data, declared)
}

// download fetches an image URL with the provider's HTTP client, without
// the API key or extra headers, within DownloadTimeout and MaxImageBytes.
func (p *Provider) download(ctx context.Context, ref string) (provider.Image, error) {
	data, declared, err := httpx.Download(ctx, p.downloadClient, ref, p.maxImageBytes, p.downloadTimeout)
	if err != nil {
		return provider.Image{}, fmt.Errorf("%w (MaxImageBytes %d)", err, p.maxImageBytes)
	}
	return newImage(data, declared)
}

// newImage returns data as an image whose media type is sniffed from its
// first bytes. When sniffing finds only unknown binary data, the declared
// image type is used, for formats such as AVIF that http.DetectContentType
// does not know. An SVG is accepted when declared as image/svg+xml, because
// it sniffs as text.
func newImage(data []byte, declared string) (provider.Image, error) {
	if len(data) == 0 {
		return provider.Image{}, errors.New("the image is empty")
	}
	mediaType := http.DetectContentType(data)
	switch {
	case strings.HasPrefix(mediaType, "image/"):
	case mediaType == "application/octet-stream" && strings.HasPrefix(declared, "image/"):
		mediaType = declared
	case declared == "image/svg+xml" && bytes.Contains(data, []byte("<svg")):
		mediaType = declared
	default:
		return provider.Image{}, fmt.Errorf("the data is %s, not an image", mediaType)
	}
	return provider.Image{Data: data, MediaType: mediaType}, nil
}
