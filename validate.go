package imagegen

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/imagegen-go/imagegen/provider"
)

// MaxPromptLength is the longest prompt, in characters, that the Client sends.
const MaxPromptLength = 32000

// validateRequest applies the checks that hold for every model.
func validateRequest(req *provider.Request) error {
	switch {
	case strings.TrimSpace(req.Prompt) == "":
		return &ValidationError{Field: "prompt", Reason: "the prompt is empty: describe the image to generate"}
	case utf8.RuneCountInString(req.Prompt) > MaxPromptLength:
		return &ValidationError{Field: "prompt", Value: strconv.Itoa(utf8.RuneCountInString(req.Prompt)) + " characters",
			Reason: "the prompt is over the limit of 32000 characters: shorten it"}
	case req.N < 1 || req.N > 10:
		return &ValidationError{Field: "n", Value: strconv.Itoa(req.N), Reason: "must be from 1 to 10"}
	case req.OutputCompression != nil && (*req.OutputCompression < 0 || *req.OutputCompression > 100):
		return &ValidationError{Field: "output_compression", Value: strconv.Itoa(*req.OutputCompression), Reason: "must be from 0 to 100"}
	}
	if req.Size != "" && req.Size != "auto" {
		if _, _, ok := parseSize(req.Size); !ok {
			return &ValidationError{Field: "size", Value: req.Size, Reason: `want "auto" or WIDTHxHEIGHT in pixels, such as "1024x1024"`}
		}
	}
	return nil
}

// parseSize parses "WIDTHxHEIGHT" with positive integer sides.
func parseSize(s string) (w, h int, ok bool) {
	ws, hs, found := strings.Cut(s, "x")
	if !found {
		return 0, 0, false
	}
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	if err1 != nil || err2 != nil || w <= 0 || h <= 0 {
		return 0, 0, false
	}
	return w, h, true
}
