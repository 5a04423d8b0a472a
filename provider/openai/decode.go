package openai

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/internal/httpx"
	"github.com/imagegen-go/imagegen/provider"
)

// imagesResponse is the part of the service's response that the provider reads.
// Images are decoded from base64 while the JSON is parsed, straight from the
// response body buffer, so a 1.5 MB image costs about 2 MB of body plus
// 1.5 MB of image instead of several copies.
type imagesResponse struct {
	Data []struct {
		B64JSON       base64Image `json:"b64_json"`
		URL           string      `json:"url"`
		RevisedPrompt string      `json:"revised_prompt"`
	} `json:"data"`
	Model        string `json:"model"`
	Size         string `json:"size"`
	Quality      string `json:"quality"`
	Background   string `json:"background"`
	OutputFormat string `json:"output_format"`
	Usage        *struct {
		InputTokens        int64 `json:"input_tokens"`
		OutputTokens       int64 `json:"output_tokens"`
		TotalTokens        int64 `json:"total_tokens"`
		InputTokensDetails struct {
			TextTokens  int64 `json:"text_tokens"`
			ImageTokens int64 `json:"image_tokens"`
		} `json:"input_tokens_details"`
	} `json:"usage"`
}

// base64Image decodes a JSON string of standard base64 without first copying
// it into a Go string.
type base64Image []byte

func (b *base64Image) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	if len(data) < 2 || data[0] != '"' || data[len(data)-1] != '"' {
		return errors.New("b64_json is not a string")
	}
	src := data[1 : len(data)-1]
	if bytes.IndexByte(src, '\\') >= 0 {
		// Escaped characters (such as "\/") need the JSON decoder.
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		src = []byte(s)
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
	n, err := base64.StdEncoding.Decode(out, src)
	if err != nil {
		return fmt.Errorf("b64_json is not valid base64: %w", err)
	}
	*b = out[:n]
	return nil
}

// decodeResponse reads a 2xx response. A response without a usable image is
// an error, never a success. Its class is ClassOutcomeUnknown, because the
// service responded with success and may have billed the request: the
// Client's RetryPolicy.OutcomeUnknown decides whether to send it again.
func (p *Provider) decodeResponse(ctx context.Context, raw *http.Response, model string) (*provider.Response, error) {
	fail := func(msg string, cause error) error {
		return &imagegen.Error{
			Provider:   p.name,
			Model:      model,
			StatusCode: raw.StatusCode,
			Class:      imagegen.ClassOutcomeUnknown,
			Message:    msg,
			RequestID:  raw.Header.Get("X-Request-Id"),
			Err:        cause,
		}
	}

	mediaType, _, _ := mime.ParseMediaType(raw.Header.Get("Content-Type"))
	if mediaType != "" && mediaType != "application/json" {
		return nil, fail("the service answered "+mediaType+" instead of JSON; a proxy may stand in front of it", nil)
	}

	body, err := httpx.ReadLimited(raw.Body, p.bodyLimit(), raw.ContentLength)
	if err != nil {
		if ctx.Err() != nil {
			return nil, imagegen.NewTransportError(p.name, model, fmt.Errorf("%w: %w", ctx.Err(), err), true)
		}
		if errors.Is(err, httpx.ErrTooLarge) {
			return nil, fail(err.Error(), err)
		}
		return nil, imagegen.NewTransportError(p.name, model, err, true)
	}

	var ir imagesResponse
	if err := json.Unmarshal(body, &ir); err != nil {
		return nil, fail("the response body is not a valid images response: "+err.Error(), err)
	}
	if len(ir.Data) == 0 {
		return nil, fail("the service answered without any image", nil)
	}

	resp := &provider.Response{
		Images:       make([]provider.Image, 0, len(ir.Data)),
		Model:        ir.Model,
		Size:         ir.Size,
		Quality:      ir.Quality,
		Background:   ir.Background,
		OutputFormat: ir.OutputFormat,
	}
	if resp.Model == "" {
		resp.Model = model
	}
	if ir.Usage != nil {
		resp.Usage = &provider.Usage{
			InputTokens:      ir.Usage.InputTokens,
			InputTextTokens:  ir.Usage.InputTokensDetails.TextTokens,
			InputImageTokens: ir.Usage.InputTokensDetails.ImageTokens,
			OutputTokens:     ir.Usage.OutputTokens,
			TotalTokens:      ir.Usage.TotalTokens,
		}
	}

	for i, d := range ir.Data {
		data := []byte(d.B64JSON)
		if len(data) == 0 && d.URL != "" {
			data, err = p.download(ctx, d.URL)
			if err != nil {
				return nil, fail(fmt.Sprintf("image %d: %v", i, err), err)
			}
		}
		if len(data) == 0 {
			return nil, fail(fmt.Sprintf("image %d has neither b64_json nor url", i), nil)
		}
		if int64(len(data)) > p.maxImageBytes {
			return nil, fail(fmt.Sprintf("image %d is %d bytes, over the %d-byte limit", i, len(data), p.maxImageBytes), nil)
		}
		resp.Images = append(resp.Images, provider.Image{
			Data:          data,
			MediaType:     http.DetectContentType(data),
			RevisedPrompt: d.RevisedPrompt,
		})
	}
	return resp, nil
}

// bodyLimit bounds an answer's size: up to ten images in base64 plus room
// for the JSON around them.
func (p *Provider) bodyLimit() int64 {
	return 10*(p.maxImageBytes/3*4+4) + 1<<20
}

// download fetches an image that the service returned as a URL, with the
// provider's HTTP client, a size cap and a timeout.
func (p *Provider) download(ctx context.Context, rawURL string) ([]byte, error) {
	data, _, err := httpx.Download(ctx, p.downloadClient, rawURL, p.maxImageBytes, p.downloadTimeout)
	return data, err
}
