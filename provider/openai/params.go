package openai

import (
	"bytes"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/packages/param"

	"github.com/imagegen-go/imagegen/provider"
)

// generateParams converts req to the SDK's parameters. Empty fields are left
// out so that the service applies its defaults.
func generateParams(req *provider.Request, model string) openai.ImageGenerateParams {
	params := openai.ImageGenerateParams{
		Prompt:       req.Prompt,
		Model:        model,
		Size:         openai.ImageGenerateParamsSize(req.Size),
		Quality:      openai.ImageGenerateParamsQuality(req.Quality),
		Background:   openai.ImageGenerateParamsBackground(req.Background),
		OutputFormat: openai.ImageGenerateParamsOutputFormat(req.OutputFormat),
		Moderation:   openai.ImageGenerateParamsModeration(req.Moderation),
		Style:        openai.ImageGenerateParamsStyle(req.Style),
	}
	if req.N > 0 {
		params.N = param.NewOpt(int64(req.N))
	}
	if req.OutputCompression != nil {
		params.OutputCompression = param.NewOpt(int64(*req.OutputCompression))
	}
	if req.SafetyIdentifier != "" {
		params.SafetyIdentifier = param.NewOpt(req.SafetyIdentifier)
	}
	if len(req.Extra) > 0 {
		params.SetExtraFields(req.Extra)
	}
	return params
}

// editParams converts req to the SDK's multipart parameters. Each image part
// carries its media type: a part sent as application/octet-stream is rejected.
func editParams(req *provider.EditRequest, model string) openai.ImageEditParams {
	params := openai.ImageEditParams{
		Prompt:        req.Prompt,
		Model:         model,
		Size:          openai.ImageEditParamsSize(req.Size),
		Quality:       openai.ImageEditParamsQuality(req.Quality),
		Background:    openai.ImageEditParamsBackground(req.Background),
		OutputFormat:  openai.ImageEditParamsOutputFormat(req.OutputFormat),
		InputFidelity: openai.ImageEditParamsInputFidelity(req.InputFidelity),
	}
	if len(req.Images) == 1 {
		params.Image.OfFile = fileReader(req.Images[0])
	} else {
		for _, f := range req.Images {
			params.Image.OfFileArray = append(params.Image.OfFileArray, fileReader(f))
		}
	}
	if req.Mask != nil {
		params.Mask = fileReader(*req.Mask)
	}
	if req.N > 0 {
		params.N = param.NewOpt(int64(req.N))
	}
	if req.OutputCompression != nil {
		params.OutputCompression = param.NewOpt(int64(*req.OutputCompression))
	}
	if req.SafetyIdentifier != "" {
		params.SafetyIdentifier = param.NewOpt(req.SafetyIdentifier)
	}
	if len(req.Extra) > 0 {
		params.SetExtraFields(req.Extra)
	}
	return params
}

func fileReader(f provider.File) interface {
	Read([]byte) (int, error)
} {
	name := f.Name
	if name == "" {
		name = "image" + extensionFor(f.MediaType)
	}
	return openai.File(bytes.NewReader(f.Data), name, f.MediaType)
}

func extensionFor(mediaType string) string {
	switch mediaType {
	case "image/jpeg":
		return ".jpg"
	case "image/webp":
		return ".webp"
	case "image/gif":
		return ".gif"
	}
	return ".png"
}
