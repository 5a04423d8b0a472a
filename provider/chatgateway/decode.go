package chatgateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/imagegen-go/imagegen"
	"github.com/imagegen-go/imagegen/internal/httpx"
	"github.com/imagegen-go/imagegen/provider"
)

// chatResponse is the part of a chat completion that the provider reads.
// It is decoded here instead of by the SDK because gateways send message
// content as a string or as an array of parts, and the SDK's message type
// only models the string.
type chatResponse struct {
	Model   string `json:"model"`
	Choices []struct {
		FinishReason string      `json:"finish_reason"`
		Message      chatMessage `json:"message"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int64 `json:"prompt_tokens"`
		CompletionTokens int64 `json:"completion_tokens"`
		TotalTokens      int64 `json:"total_tokens"`
	} `json:"usage"`
}

type chatMessage struct {
	// Content is a JSON string, an array of content parts or null.
	Content json.RawMessage `json:"content"`
	Refusal string          `json:"refusal"`
	// Images is the image list that some gateways add next to the content.
	Images []contentPart `json:"images"`
}

type contentPart struct {
	Type     string   `json:"type"`
	Text     string   `json:"text"`
	ImageURL imageURL `json:"image_url"`
}

// imageURL is the image_url of a content part: {"url": "…"} as OpenAI
// defines it, or a plain string as some gateways send it.
type imageURL string

func (u *imageURL) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '"' {
		return json.Unmarshal(data, (*string)(u))
	}
	var obj struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(data, &obj); err != nil {
		return err
	}
	*u = imageURL(obj.URL)
	return nil
}

// decodeResponse reads a 2xx chat completion and returns its images. A
// response without a usable image is an error, never a success.
func (p *Provider) decodeResponse(ctx context.Context, raw *http.Response, model string, n int) (*provider.Response, error) {
	fail := func(class imagegen.Class, msg string, cause error) error {
		return &imagegen.Error{
			Provider:   p.name,
			Model:      model,
			StatusCode: raw.StatusCode,
			Class:      class,
			Message:    msg,
			RequestID:  raw.Header.Get("X-Request-Id"),
			Err:        cause,
		}
	}

	mediaType, _, _ := mime.ParseMediaType(raw.Header.Get("Content-Type"))
	if mediaType != "" && mediaType != "application/json" {
		return nil, fail(imagegen.ClassOutcomeUnknown, "the gateway returned "+mediaType+" instead of JSON; check BaseURL", nil)
	}

	body, err := httpx.ReadLimited(raw.Body, p.bodyLimit(n), raw.ContentLength)
	if err != nil {
		if ctx.Err() != nil {
			return nil, imagegen.NewTransportError(p.name, model, fmt.Errorf("%w: %w", ctx.Err(), err), true)
		}
		if errors.Is(err, errTooLarge) {
			return nil, fail(imagegen.ClassOutcomeUnknown, "the chat completion is too large: "+err.Error(), err)
		}
		return nil, imagegen.NewTransportError(p.name, model, err, true)
	}

	var cr chatResponse
	if err := json.Unmarshal(body, &cr); err != nil {
		return nil, fail(imagegen.ClassOutcomeUnknown, "the gateway's response is not a valid chat completion: "+err.Error(), err)
	}

	var refs []string
	var refusal, textLen int
	contentFiltered := false
	for i, choice := range cr.Choices {
		found, text, err := messageImageRefs(choice.Message)
		if err != nil {
			return nil, fail(imagegen.ClassOutcomeUnknown, fmt.Sprintf("choice %d: %v", i, err), err)
		}
		refs = appendUnique(refs, found...)
		textLen += text
		refusal += len(choice.Message.Refusal)
		contentFiltered = contentFiltered || choice.FinishReason == "content_filter"
	}

	if len(refs) == 0 {
		switch {
		case refusal > 0 || contentFiltered:
			return nil, fail(imagegen.ClassContentRejected, "the model refused to generate the image", nil)
		case len(cr.Choices) == 0:
			return nil, fail(imagegen.ClassOutcomeUnknown, "the chat completion has no choices", nil)
		}
		return nil, fail(imagegen.ClassOutcomeUnknown, fmt.Sprintf(
			"the assistant message contains no image (%d characters of text and no data URL, markdown image, image URL or image_url part)", textLen), nil)
	}

	resp := &provider.Response{Model: cr.Model, Images: make([]provider.Image, 0, len(refs))}
	if resp.Model == "" {
		resp.Model = model
	}
	if cr.Usage != nil {
		resp.Usage = &provider.Usage{
			InputTokens:     cr.Usage.PromptTokens,
			InputTextTokens: cr.Usage.PromptTokens,
			OutputTokens:    cr.Usage.CompletionTokens,
			TotalTokens:     cr.Usage.TotalTokens,
		}
	}
	for i, ref := range refs {
		img, err := p.fetchImage(ctx, ref)
		if err != nil {
			if ctx.Err() != nil {
				return nil, imagegen.NewTransportError(p.name, model, fmt.Errorf("%w: %w", ctx.Err(), err), true)
			}
			return nil, fail(imagegen.ClassOutcomeUnknown, fmt.Sprintf("image %d: %v", i, err), err)
		}
		resp.Images = append(resp.Images, img)
	}
	return resp, nil
}

// bodyLimit bounds the size of a chat completion: n images, at least four,
// in base64 plus room for the JSON and text around them.
func (p *Provider) bodyLimit(n int) int64 {
	return int64(max(n, 4))*(p.maxImageBytes/3*4+4) + 1<<20
}

// messageImageRefs returns the image references in msg, in order, and the
// number of bytes of text it contains.
func messageImageRefs(msg chatMessage) (refs []string, textLen int, err error) {
	content := bytes.TrimSpace(msg.Content)
	switch {
	case len(content) == 0 || string(content) == "null":
	case content[0] == '"':
		var text string
		if err := json.Unmarshal(content, &text); err != nil {
			return nil, 0, fmt.Errorf("invalid message content: %w", err)
		}
		refs = textImageRefs(text)
		textLen = len(text)
	case content[0] == '[':
		var parts []contentPart
		if err := json.Unmarshal(content, &parts); err != nil {
			return nil, 0, fmt.Errorf("invalid message content parts: %w", err)
		}
		for _, part := range parts {
			if part.ImageURL != "" {
				refs = appendUnique(refs, string(part.ImageURL))
			}
			if part.Text != "" {
				refs = appendUnique(refs, textImageRefs(part.Text)...)
				textLen += len(part.Text)
			}
		}
	default:
		return nil, 0, fmt.Errorf("message content is neither a string nor an array of parts: %.20s", content)
	}

	for _, part := range msg.Images {
		if part.ImageURL != "" {
			refs = appendUnique(refs, string(part.ImageURL))
		}
	}
	return refs, textLen, nil
}

var (
	// markdownImagePattern matches ![alt](url) and ![alt](<url> "title"),
	// capturing the URL.
	markdownImagePattern = regexp.MustCompile(`!\[[^\]]*\]\(\s*<?([^\s()<>]+)>?(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)`)
	// dataURLPattern matches a base64 image data URL.
	dataURLPattern = regexp.MustCompile(`data:image/[A-Za-z0-9.+-]+(?:;[A-Za-z0-9_.+=-]+)*;base64,[A-Za-z0-9+/=_-]+`)
	// bareURLPattern matches an http or https URL in running text.
	bareURLPattern = regexp.MustCompile(`https?://[^\s<>"'()\[\]{}]+`)
)

// textImageRefs returns the image references in text: its markdown images,
// or else its data URLs, or else its bare http and https URLs. Bare URLs
// count only when nothing more explicit is present, because a link in the
// text may point to something other than the image.
func textImageRefs(text string) []string {
	var refs []string
	for _, m := range markdownImagePattern.FindAllStringSubmatch(text, -1) {
		refs = appendUnique(refs, m[1])
	}
	if len(refs) > 0 {
		return refs
	}
	for _, m := range dataURLPattern.FindAllString(text, -1) {
		refs = appendUnique(refs, m)
	}
	if len(refs) > 0 {
		return refs
	}
	for _, m := range bareURLPattern.FindAllString(text, -1) {
		refs = appendUnique(refs, strings.TrimRight(m, ".,;:!?"))
	}
	return refs
}

// appendUnique appends each of values to list unless list contains it.
func appendUnique(list []string, values ...string) []string {
	for _, v := range values {
		if !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}
