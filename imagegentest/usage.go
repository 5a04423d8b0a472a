package imagegentest

import (
	"math"
	"unicode/utf8"
)

// gptImage1OutputTokens is the number of output tokens that OpenAI
// published for one gpt-image-1 image, by quality and size. Server and
// FakeProvider report it for every GPT Image model, because the later
// families publish no per-image table.
var gptImage1OutputTokens = map[string]map[string]int64{
	"low":    {"1024x1024": 272, "1024x1536": 408, "1536x1024": 400},
	"medium": {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568},
	"high":   {"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208},
}

// tokenQuality maps a requested quality to a row of gptImage1OutputTokens.
// "auto", "" and DALL·E's "standard" count as medium; "xhigh", "max" and
// DALL·E's "hd" count as high.
func tokenQuality(quality string) string {
	switch quality {
	case "low":
		return "low"
	case "high", "xhigh", "max", "hd":
		return "high"
	}
	return "medium"
}

// OutputTokens returns the output tokens that Server and FakeProvider report
// for one image of the given quality, width and height in pixels. The three
// sizes of OpenAI's gpt-image-1 table use its exact figures. Other sizes scale
// the 1024x1024 figure by pixel count and round to the nearest token, which
// is an estimate, not OpenAI's formula.
func OutputTokens(quality string, width, height int) int64 {
	row := gptImage1OutputTokens[tokenQuality(quality)]
	switch {
	case width == 1024 && height == 1024:
		return row["1024x1024"]
	case width == 1024 && height == 1536:
		return row["1024x1536"]
	case width == 1536 && height == 1024:
		return row["1536x1024"]
	}
	scaled := float64(row["1024x1024"]) * float64(width) * float64(height) / (1024 * 1024)
	return max(1, int64(math.Round(scaled)))
}

// TextTokens returns the input text tokens that Server and FakeProvider
// report for a prompt: its length in bytes divided by 4, rounded up, and at
// least 1. Real tokenizers differ; this is an estimate that tests can repeat.
func TextTokens(prompt string) int64 {
	return max(1, int64((len(prompt)+3)/4))
}

// ImageTokens returns the input image tokens that Server and FakeProvider
// report for one input image of width x height pixels. It uses the tile
// formula that OpenAI publishes for high-detail image inputs of its vision
// models. The image is scaled to fit 2048x2048, then so that its short side
// is at most 768, and costs 85 tokens plus 170 per 512-pixel tile. GPT Image
// models may bill input images differently, so treat the figure as an
// estimate.
func ImageTokens(width, height int) int64 {
	if width <= 0 || height <= 0 {
		return 0
	}
	w, h := float64(width), float64(height)
	if longest := math.Max(w, h); longest > 2048 {
		w, h = w*2048/longest, h*2048/longest
	}
	if shortest := math.Min(w, h); shortest > 768 {
		w, h = w*768/shortest, h*768/shortest
	}
	tiles := math.Ceil(w/512) * math.Ceil(h/512)
	return 85 + 170*int64(tiles)
}

// promptLength returns the prompt's length in characters, the unit of
// OpenAI's 32,000-character limit.
func promptLength(prompt string) int {
	return utf8.RuneCountInString(prompt)
}
