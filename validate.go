package imagegen

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/imagegen-go/imagegen/provider"
)

// ValidateGeneric checks what every model requires: a non-blank prompt of at
// most MaxPromptRunes characters, n from 0 (meaning 1) to
// MaxImagesPerRequest, a size of "auto" or WIDTHxHEIGHT with positive edges,
// and an output compression from 0 to 100. It returns a *ValidationError
// naming the first field at fault.
func ValidateGeneric(req *provider.Request) error {
	return validateGeneric(req, nil)
}

// validateGeneric is ValidateGeneric; a non-nil m is named in the n check.
func validateGeneric(req *provider.Request, m *Model) error {
	if req == nil {
		return &ValidationError{Field: "request", Reason: "the request is nil"}
	}
	if strings.TrimSpace(req.Prompt) == "" {
		return &ValidationError{Field: "prompt", Reason: "the prompt is empty; describe the image to generate"}
	}
	if n := utf8.RuneCountInString(req.Prompt); n > MaxPromptRunes {
		return &ValidationError{
			Field:  "prompt",
			Reason: fmt.Sprintf("the prompt has %d characters, above the maximum of %d; shorten it", n, MaxPromptRunes),
		}
	}
	if req.N < 0 || req.N > MaxImagesPerRequest {
		reason := fmt.Sprintf("n must be from 1 to %d (0 means 1); make several requests for more images", MaxImagesPerRequest)
		if m != nil {
			reason = fmt.Sprintf("%s accepts n from 1 to %d per request (0 means 1); make several requests for more images", m.Name, MaxImagesPerRequest)
		}
		return &ValidationError{Field: "n", Value: strconv.Itoa(req.N), Reason: reason}
	}
	if req.Size != "" && req.Size != "auto" {
		if _, _, ok := parseSizeWxH(req.Size); !ok {
			return &ValidationError{
				Field:  "size",
				Value:  req.Size,
				Reason: `size must be "auto" or WIDTHxHEIGHT in pixels, such as 1024x1024`,
			}
		}
	}
	if c := req.OutputCompression; c != nil && (*c < 0 || *c > 100) {
		return &ValidationError{
			Field:  "output_compression",
			Value:  strconv.Itoa(*c),
			Reason: "output_compression must be from 0 to 100",
		}
	}
	return nil
}

// Validate checks req against ValidateGeneric and then against its model's
// entry: size, quality, background, output format, output compression,
// moderation and style. Models not in the catalog get only the generic
// checks. It returns a *ValidationError whose Reason names the model and the
// accepted values. A nil catalog validates generically.
//
// Validate checks n against MaxImagesPerRequest, not against the model's
// MaxN: the Client splits a larger request into calls of at most
// MaxImagesPerCall images with SplitN.
func (c *Catalog) Validate(req *provider.Request) error {
	if req == nil {
		return ValidateGeneric(req)
	}
	m := c.resolve(req.Model)
	if err := validateGeneric(req, m); err != nil {
		return err
	}
	if m == nil {
		return nil
	}
	return m.validate(req)
}

// ValidateEdit checks an edit request like Validate. It also checks that the
// model supports edits and that moderation and style, which edits do not
// accept, are empty. Each input image must be non-empty and have a media
// type, a mask must be a PNG, and input fidelity must be "high" or "low".
func (c *Catalog) ValidateEdit(req *provider.EditRequest) error {
	if req == nil {
		return &ValidationError{Field: "request", Reason: "the edit request is nil"}
	}
	if err := c.Validate(&req.Request); err != nil {
		return err
	}

	if m := c.resolve(req.Model); m != nil && !m.SupportsEdits {
		return &ValidationError{
			Field:  "model",
			Value:  req.Model,
			Reason: fmt.Sprintf("%s does not support edits; use a model that does, such as gpt-image-2", req.Model),
		}
	}
	if req.Moderation != "" {
		return &ValidationError{Field: "moderation", Value: req.Moderation, Reason: "edits do not accept moderation; leave it empty"}
	}
	if req.Style != "" {
		return &ValidationError{Field: "style", Value: req.Style, Reason: "edits do not accept style; leave it empty"}
	}
	if len(req.Images) == 0 {
		return &ValidationError{Field: "image", Reason: "an edit needs at least one input image"}
	}
	for i := range req.Images {
		if err := validateEditFile("image", i, &req.Images[i]); err != nil {
			return err
		}
	}
	if req.Mask != nil {
		if err := validateEditFile("mask", 0, req.Mask); err != nil {
			return err
		}
		if req.Mask.MediaType != "image/png" {
			return &ValidationError{
				Field:  "mask",
				Value:  req.Mask.MediaType,
				Reason: "the mask must be a PNG (image/png) whose transparent areas mark what to edit",
			}
		}
	}
	switch req.InputFidelity {
	case "", "high", "low":
	default:
		return &ValidationError{Field: "input_fidelity", Value: req.InputFidelity, Reason: `input_fidelity must be "high" or "low"`}
	}
	return nil
}

func validateEditFile(field string, index int, f *provider.File) error {
	name := f.Name
	if name == "" {
		name = fmt.Sprintf("%s %d", field, index+1)
	}
	if len(f.Data) == 0 {
		return &ValidationError{Field: field, Value: name, Reason: "the file is empty"}
	}
	if f.MediaType == "" || f.MediaType == "application/octet-stream" {
		return &ValidationError{
			Field:  field,
			Value:  name,
			Reason: "set MediaType to the image's type, such as image/png; services reject application/octet-stream",
		}
	}
	return nil
}

// validate checks the model-specific fields of a generically valid request.
func (m *Model) validate(req *provider.Request) error {
	if err := m.validateSize(req.Size); err != nil {
		return err
	}
	checks := []struct {
		field, value string
		allowed      []string
	}{
		{"quality", req.Quality, m.Qualities},
		{"output_format", req.OutputFormat, m.OutputFormats},
		{"background", req.Background, m.Backgrounds},
		{"moderation", req.Moderation, m.Moderations},
		{"style", req.Style, m.Styles},
	}
	for _, check := range checks {
		if err := m.validateChoice(check.field, check.value, check.allowed); err != nil {
			return err
		}
	}

	format := req.OutputFormat
	if req.Background == "transparent" && format != "" && format != "png" && format != "webp" {
		return &ValidationError{
			Field:  "background",
			Value:  req.Background,
			Reason: fmt.Sprintf("%s makes transparent backgrounds only in png or webp output, not %s; change output_format or the background", m.Name, format),
		}
	}
	if req.OutputCompression != nil {
		if m.OutputFormats != nil && len(m.OutputFormats) == 0 {
			return &ValidationError{
				Field:  "output_compression",
				Value:  strconv.Itoa(*req.OutputCompression),
				Reason: fmt.Sprintf("%s does not accept output_compression; leave it unset", m.Name),
			}
		}
		if format != "jpeg" && format != "webp" {
			formatText := format
			if formatText == "" {
				formatText = "unset (png by default)"
			}
			return &ValidationError{
				Field:  "output_compression",
				Value:  strconv.Itoa(*req.OutputCompression),
				Reason: fmt.Sprintf("%s applies output_compression only to jpeg and webp output, but output_format is %s; set output_format to jpeg or webp, or leave the compression unset", m.Name, formatText),
			}
		}
	}
	return nil
}

// validateChoice checks value against allowed, following the nil and empty
// list rules of Model.
func (m *Model) validateChoice(field, value string, allowed []string) error {
	if value == "" || allowed == nil || slices.Contains(allowed, value) {
		return nil
	}
	if len(allowed) == 0 {
		return &ValidationError{
			Field:  field,
			Value:  value,
			Reason: fmt.Sprintf("%s does not accept %s; leave it empty", m.Name, field),
		}
	}
	return &ValidationError{
		Field:  field,
		Value:  value,
		Reason: fmt.Sprintf("%s accepts %s %s", m.Name, field, strings.Join(allowed, ", ")),
	}
}

// validateSize checks a generically valid size against the fixed list and
// the free-form rule.
func (m *Model) validateSize(size string) error {
	if size == "" || m.Sizes == nil && m.FlexibleSize == nil || slices.Contains(m.Sizes, size) {
		return nil
	}

	var problem string
	if m.FlexibleSize != nil && size != "auto" {
		width, height, _ := parseSizeWxH(size)
		if problem = m.FlexibleSize.violation(width, height); problem == "" {
			return nil
		}
	}

	allowed := strings.Join(m.Sizes, ", ")
	if m.FlexibleSize != nil {
		allowed = catalogJoinNonEmpty(", or ", allowed, m.FlexibleSize.describe())
	}
	reason := fmt.Sprintf("%s accepts size %s", m.Name, allowed)
	if allowed == "" {
		reason = fmt.Sprintf("%s does not accept size; leave it empty", m.Name)
	}
	if problem != "" {
		reason += "; here " + problem
	}
	return &ValidationError{Field: "size", Value: size, Reason: reason}
}
