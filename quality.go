package imagegen

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Preset is a named trade-off between quality, size and cost that Select
// maps to a model's own quality and size values.
type Preset string

// The built-in presets. A model's Presets may define further names.
const (
	// PresetPreview is the cheapest: the lowest quality at about 1 megapixel.
	PresetPreview Preset = "preview"
	// PresetWeb is "medium" quality (or the middle one) at about 1 megapixel.
	PresetWeb Preset = "web"
	// PresetPrint is "high" quality (or the highest) at about 4 megapixels,
	// or the largest size of that aspect ratio for fixed-size models.
	PresetPrint Preset = "print"
)

// Default pixel targets of the built-in presets.
const (
	presetWebPixels   = 1024 * 1024
	presetPrintPixels = 2048 * 2048
)

// PresetSetting is the quality and size target of a preset for one model.
type PresetSetting struct {
	// Quality is the request quality. Empty means the preset's default
	// for the model's Qualities.
	Quality string
	// Pixels is the target width × height. Zero means the preset's default.
	Pixels int
}

// Selection is the input of Select: a preset, an aspect ratio and a cost cap.
type Selection struct {
	// Preset sets the target quality and size. Empty means PresetWeb, or
	// with MaxCostPerImage the highest quality and size the cap allows.
	// With MaxCostPerImage the preset is a ceiling that the cap may lower.
	Preset Preset

	// AspectRatio is width to height as "16:9" or a decimal such as "1.5".
	// Empty means 1:1.
	AspectRatio string

	// MaxCostPerImage is the most one image may cost in US dollars, by the
	// catalog's estimate of image output. Zero means no cap.
	MaxCostPerImage float64
}

// Choice is the size and quality that Select picked.
type Choice struct {
	// Size and Quality are request values for the model. Size is empty when
	// the model lists no sizes, leaving the service default.
	Size    string
	Quality string
	// EstimatedCostPerImage is the estimated image output cost of one
	// image; unknown when the model's prices are not published.
	EstimatedCostPerImage Cost
	// Reason explains the pick in one sentence, for logs.
	Reason string
}

// Select picks a size and quality of model for sel.
//
// The aspect ratio maps to the nearest listed size for fixed-size models,
// and for free-form sizes to a size of that ratio near the preset's pixel
// target, within the model's bounds and multiples. A ratio beyond the
// model's maximum is clamped. With MaxCostPerImage, Select picks the highest
// quality and then the largest size whose estimated cost fits.
//
// It returns a *ValidationError for an unknown model, preset or malformed
// ratio. When nothing fits the cap, the error matches ErrBudgetExceeded and
// names the cheapest option's cost. When the model has no estimates to
// compare with the cap, the error matches ErrCostUnknown.
func (c *Catalog) Select(model string, sel Selection) (Choice, error) {
	m := c.resolve(model)
	if m == nil {
		return Choice{}, &ValidationError{
			Field:  "model",
			Value:  model,
			Reason: "the model is not in the catalog, so it has no sizes or qualities to choose from; set them on the request or add the model with Catalog.With",
		}
	}
	if capUSD := sel.MaxCostPerImage; capUSD < 0 || math.IsNaN(capUSD) || math.IsInf(capUSD, 0) {
		return Choice{}, &ValidationError{
			Field:  "max_cost_per_image",
			Value:  strconv.FormatFloat(capUSD, 'g', -1, 64),
			Reason: "the cap must be a positive amount of US dollars, or 0 for none",
		}
	}
	ratio, err := parseAspectRatio(sel.AspectRatio)
	if err != nil {
		return Choice{}, err
	}

	preset := sel.Preset
	if preset == "" && sel.MaxCostPerImage == 0 {
		preset = PresetWeb
	}
	var setting PresetSetting
	if preset != "" {
		if setting, err = m.presetSetting(preset); err != nil {
			return Choice{}, err
		}
	}

	sizes := m.sizeOptions(ratio)
	qualities := m.rankedQualities()
	if len(qualities) == 0 {
		qualities = []string{""}
	}
	if sel.MaxCostPerImage == 0 {
		return m.choosePreset(preset, setting, sizes), nil
	}

	// With a cap, the preset is a ceiling on quality and size.
	if preset != "" {
		if i := slices.Index(qualities, setting.Quality); i >= 0 {
			qualities = qualities[:i+1]
		}
		if target, ok := nearestSizeOption(sizes, setting.Pixels); ok {
			sizes = slices.DeleteFunc(sizes, func(s sizeOption) bool { return s.pixels() > target.pixels() })
		}
	}
	return m.chooseWithinCap(preset, sel.MaxCostPerImage, qualities, sizes)
}

// choosePreset returns the preset's quality at the size nearest its target.
func (m *Model) choosePreset(preset Preset, setting PresetSetting, sizes []sizeOption) Choice {
	size, _ := nearestSizeOption(sizes, setting.Pixels)
	choice := Choice{
		Size:                  size.String(),
		Quality:               setting.Quality,
		EstimatedCostPerImage: m.imageCostEstimate(setting.Quality, size.String()),
	}
	choice.Reason = fmt.Sprintf("%s preset for %s: quality %s at %s", preset, m.Name, displayQuality(choice.Quality), size.describe())
	return choice
}

// chooseWithinCap returns the highest quality, then largest size, whose
// estimated cost is at most capUSD.
func (m *Model) chooseWithinCap(preset Preset, capUSD float64, qualities []string, sizes []sizeOption) (Choice, error) {
	if len(sizes) == 0 {
		sizes = []sizeOption{{}}
	}
	var above, cheapest *Choice
	for _, quality := range slices.Backward(qualities) {
		for _, size := range slices.Backward(sizes) {
			option := Choice{
				Size:                  size.String(),
				Quality:               quality,
				EstimatedCostPerImage: m.imageCostEstimate(quality, size.String()),
			}
			cost := option.EstimatedCostPerImage
			if !cost.Known {
				continue
			}
			if cost.USD > capUSD {
				if above == nil {
					above = &option
				}
				if cheapest == nil || cost.USD < cheapest.EstimatedCostPerImage.USD {
					cheapest = &option
				}
				continue
			}

			option.Reason = fmt.Sprintf("quality %s at %s is the highest that fits the %s per-image cap for %s (estimated %s)",
				displayQuality(quality), size.describe(), costFormatUSD(capUSD), m.Name, costFormatUSD(cost.USD))
			if above != nil {
				option.Reason += fmt.Sprintf("; quality %s at %s would cost an estimated %s",
					displayQuality(above.Quality), above.Size, costFormatUSD(above.EstimatedCostPerImage.USD))
			}
			if preset != "" {
				option.Reason = fmt.Sprintf("%s preset capped: %s", preset, option.Reason)
			}
			return option, nil
		}
	}

	if cheapest == nil {
		return Choice{}, fmt.Errorf("%w: %s has no cost estimates to compare with a per-image cap of %s; remove the cap or add OutputTokens and prices with Catalog.With",
			ErrCostUnknown, m.Name, costFormatUSD(capUSD))
	}
	return Choice{}, fmt.Errorf("%w: no quality and size of %s fits the per-image cap of %s; the cheapest, quality %s at %s, costs an estimated %s, so raise the cap",
		ErrBudgetExceeded, m.Name, costFormatUSD(capUSD), displayQuality(cheapest.Quality), cheapest.Size, costFormatUSD(cheapest.EstimatedCostPerImage.USD))
}

// imageCostEstimate returns the estimated output cost of one image.
func (m *Model) imageCostEstimate(quality, size string) Cost {
	if m.Pricing.PerImage != nil {
		return m.perImageCost(quality, size, 1)
	}
	return m.imageOutputEstimate(quality, size).Cost
}

func displayQuality(quality string) string {
	if quality == "" {
		return "(default)"
	}
	return quality
}

// presetSetting returns the model's setting for preset with defaults filled.
func (m *Model) presetSetting(preset Preset) (PresetSetting, error) {
	setting, ok := m.Presets[preset]
	switch preset {
	case PresetPreview, PresetWeb, PresetPrint:
	default:
		if !ok {
			names := []string{string(PresetPreview), string(PresetWeb), string(PresetPrint)}
			for name := range m.Presets {
				if !slices.Contains(names, string(name)) {
					names = append(names, string(name))
				}
			}
			return PresetSetting{}, &ValidationError{
				Field:  "preset",
				Value:  string(preset),
				Reason: fmt.Sprintf("%s has presets %s", m.Name, strings.Join(names, ", ")),
			}
		}
	}

	if setting.Quality == "" {
		setting.Quality = m.defaultPresetQuality(preset)
	}
	if setting.Pixels == 0 {
		setting.Pixels = presetWebPixels
		if preset == PresetPrint {
			setting.Pixels = presetPrintPixels
		}
	}
	return setting, nil
}

// defaultPresetQuality picks a listed quality for a built-in preset.
func (m *Model) defaultPresetQuality(preset Preset) string {
	ranked := m.rankedQualities()
	if len(ranked) == 0 {
		return ""
	}
	switch preset {
	case PresetPreview:
		return ranked[0]
	case PresetPrint:
		if slices.Contains(ranked, "high") {
			return "high"
		}
		return ranked[len(ranked)-1]
	}
	if slices.Contains(ranked, "medium") {
		return "medium"
	}
	return ranked[(len(ranked)-1)/2]
}

// rankedQualities returns Qualities without "auto", lowest first.
func (m *Model) rankedQualities() []string {
	return slices.DeleteFunc(slices.Clone(m.Qualities), func(q string) bool { return q == "auto" })
}

// sizeOption is a candidate size and how it relates to the requested ratio.
type sizeOption struct {
	width, height int
	note          string // such as "the nearest listed size to 16:9"
}

func (s sizeOption) pixels() int { return s.width * s.height }

func (s sizeOption) String() string {
	if s.width == 0 {
		return ""
	}
	return strconv.Itoa(s.width) + "x" + strconv.Itoa(s.height)
}

func (s sizeOption) describe() string {
	if s.width == 0 {
		return "the service's default size"
	}
	return s.String() + " (" + s.note + ")"
}

// sizeOptions returns the sizes of m nearest ratio, smallest first: for free-
// form sizes one per preset pixel target, otherwise the listed sizes whose
// ratio is nearest.
func (m *Model) sizeOptions(ratio float64) []sizeOption {
	label := formatAspectRatio(ratio)
	if rule := m.FlexibleSize; rule != nil {
		var out []sizeOption
		for _, pixels := range m.presetPixelTargets() {
			width, height, fitted, ok := rule.fitRatio(ratio, pixels)
			if !ok || slices.ContainsFunc(out, func(s sizeOption) bool { return s.width == width && s.height == height }) {
				continue
			}
			note := fmt.Sprintf("%s at about %.1f megapixels", label, float64(width*height)/1e6)
			if fitted != ratio {
				note = fmt.Sprintf("%s, the nearest ratio %s accepts to %s", formatAspectRatio(fitted), m.Name, label)
			}
			out = append(out, sizeOption{width: width, height: height, note: note})
		}
		slices.SortFunc(out, func(a, b sizeOption) int { return cmp.Compare(a.pixels(), b.pixels()) })
		return out
	}

	var out []sizeOption
	best := math.Inf(1)
	for _, size := range m.Sizes {
		width, height, ok := parseSizeWxH(size)
		if !ok {
			continue
		}
		distance := math.Abs(math.Log(float64(width)/float64(height)) - math.Log(ratio))
		switch {
		case distance < best-1e-9:
			best = distance
			out = out[:0]
		case distance > best+1e-9:
			continue
		}
		note := fmt.Sprintf("the %s size nearest %s", m.Name, label)
		if distance < 1e-9 {
			note = "exactly " + label
		}
		out = append(out, sizeOption{width: width, height: height, note: note})
	}
	slices.SortFunc(out, func(a, b sizeOption) int { return cmp.Compare(a.pixels(), b.pixels()) })
	return out
}

// presetPixelTargets returns the distinct pixel targets of m's presets.
func (m *Model) presetPixelTargets() []int {
	var targets []int
	presets := []Preset{PresetPreview, PresetWeb, PresetPrint}
	for name := range m.Presets {
		if !slices.Contains(presets, name) {
			presets = append(presets, name)
		}
	}
	for _, preset := range presets {
		if setting, err := m.presetSetting(preset); err == nil && !slices.Contains(targets, setting.Pixels) {
			targets = append(targets, setting.Pixels)
		}
	}
	slices.Sort(targets)
	return targets
}

// nearestSizeOption returns the option whose pixel count is nearest target
// on a log scale; ties go to the larger.
func nearestSizeOption(sizes []sizeOption, target int) (sizeOption, bool) {
	if len(sizes) == 0 {
		return sizeOption{}, false
	}
	best := sizes[0]
	for _, s := range sizes[1:] {
		if math.Abs(math.Log(float64(s.pixels())/float64(target))) <= math.Abs(math.Log(float64(best.pixels())/float64(target))) {
			best = s
		}
	}
	return best, true
}

// fitRatio returns a size of ratio (width / height) near pixels that obeys r,
// and the ratio used after clamping to MaxAspectRatio.
func (r *SizeRule) fitRatio(ratio float64, pixels int) (width, height int, fitted float64, ok bool) {
	if r.MaxAspectRatio > 0 {
		ratio = min(max(ratio, 1/r.MaxAspectRatio), r.MaxAspectRatio)
	}
	target := float64(pixels)
	if r.MaxPixels > 0 {
		target = min(target, float64(r.MaxPixels))
	}
	if r.MinPixels > 0 {
		target = max(target, float64(r.MinPixels))
	}

	h := math.Sqrt(target / ratio)
	w := h * ratio
	scale := 1.0
	if long := max(w, h); r.MaxEdge > 0 && long > float64(r.MaxEdge) {
		scale = float64(r.MaxEdge) / long
	}
	if short := min(w, h) * scale; r.MinEdge > 0 && short < float64(r.MinEdge) {
		scale *= float64(r.MinEdge) / short
	}
	w, h = w*scale, h*scale

	// Rounding to the nearest multiple can cross a bound, so also try
	// rounding both edges down and both up.
	step := float64(max(r.Multiple, 1))
	for _, round := range []func(float64) float64{math.Round, math.Floor, math.Ceil} {
		width = int(max(round(w/step), 1) * step)
		height = int(max(round(h/step), 1) * step)
		if r.violation(width, height) == "" {
			return width, height, ratio, true
		}
	}
	return 0, 0, ratio, false
}

// parseAspectRatio parses "W:H" or a decimal width-to-height ratio; empty
// means 1.
func parseAspectRatio(s string) (float64, error) {
	if s == "" {
		return 1, nil
	}
	invalid := &ValidationError{
		Field:  "aspect_ratio",
		Value:  s,
		Reason: `the aspect ratio must be width:height such as "16:9", or a positive decimal such as "1.5"`,
	}

	var ratio float64
	if w, h, found := strings.Cut(s, ":"); found {
		width, errW := strconv.ParseFloat(strings.TrimSpace(w), 64)
		height, errH := strconv.ParseFloat(strings.TrimSpace(h), 64)
		if errW != nil || errH != nil || !(width > 0) || !(height > 0) {
			return 0, invalid
		}
		ratio = width / height
	} else {
		value, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return 0, invalid
		}
		ratio = value
	}
	if !(ratio > 0) || math.IsInf(ratio, 0) {
		return 0, invalid
	}
	return ratio, nil
}

// formatAspectRatio returns common ratios as "16:9" and others as "1.85:1".
func formatAspectRatio(ratio float64) string {
	for _, known := range [][2]int{{1, 1}, {16, 9}, {9, 16}, {4, 3}, {3, 4}, {3, 2}, {2, 3}, {21, 9}, {9, 21}, {3, 1}, {1, 3}} {
		if math.Abs(ratio-float64(known[0])/float64(known[1])) < 1e-3 {
			return fmt.Sprintf("%d:%d", known[0], known[1])
		}
	}
	return strconv.FormatFloat(ratio, 'f', 2, 64) + ":1"
}
