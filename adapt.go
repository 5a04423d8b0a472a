package imagegen

import (
	"fmt"
	"math"
	"slices"

	"github.com/imagegen-go/imagegen/provider"
)

// adaptCandidates fits the request to each candidate whose model differs
// from the requested one, such as an older model in a fallback chain. A
// value the candidate's model does not accept is translated or dropped, and
// each change is listed in the candidate's warnings. Translations map a size
// to the nearest listed size of a similar aspect ratio, an unknown quality to
// "high" and an unsupported format to "png". A candidate that cannot serve the
// request at all (edits, a transparent background, more images per call than
// it makes) is removed, and its reason returned for the error when no
// candidate is left.
func (c *Client) adaptCandidates(cl *call, cands []candidate) ([]candidate, []string) {
	var skipped []string
	kept := cands[:0]
	for _, cand := range cands {
		if cand.model == cl.req.Model {
			kept = append(kept, cand)
			continue
		}
		m := c.catalog.resolve(cand.model)
		if m == nil {
			// Unknown models get only the generic checks, which the
			// request has passed already.
			kept = append(kept, cand)
			continue
		}

		req := cl.req
		req.Model = cand.model
		warnings, reason := adaptRequest(&req, m, cl.edit != nil)
		if reason == "" {
			if err := c.catalog.Validate(&req); err != nil {
				reason = err.Error()
			}
		}
		if reason != "" {
			skipped = append(skipped, fmt.Sprintf("%s (model %s): %s", cand.entry.name, cand.model, reason))
			continue
		}
		if len(warnings) > 0 {
			cand.req = &req
			cand.warnings = warnings
		}
		kept = append(kept, cand)
	}
	return kept, skipped
}

// adaptRequest changes req so that model m accepts it. It returns the
// changes made, or the reason m cannot serve req.
func adaptRequest(req *provider.Request, m *Model, edit bool) (warnings []string, reason string) {
	switch {
	case edit && !m.SupportsEdits:
		return nil, "the model does not support edits"
	case m.MaxN > 0 && req.N > m.MaxN:
		return nil, fmt.Sprintf("the model makes at most %d images per call, the request asks for %d", m.MaxN, req.N)
	case req.Background == "transparent" && m.Backgrounds != nil && !slices.Contains(m.Backgrounds, "transparent"):
		return nil, "the model cannot make a transparent background"
	}

	change := func(field, from, to string) {
		if to == "" {
			warnings = append(warnings, fmt.Sprintf("%s %q dropped for %s, which does not accept it", field, from, m.Name))
		} else {
			warnings = append(warnings, fmt.Sprintf("%s %q changed to %q for %s", field, from, to, m.Name))
		}
	}

	if req.Size != "" && req.Size != "auto" && m.validateSize(req.Size) != nil {
		to := nearestSize(req.Size, m.Sizes)
		change("size", req.Size, to)
		req.Size = to
	}
	if req.Quality != "" && m.Qualities != nil && !slices.Contains(m.Qualities, req.Quality) {
		to := ""
		if slices.Contains(m.Qualities, "high") {
			to = "high"
		}
		change("quality", req.Quality, to)
		req.Quality = to
	}
	if req.OutputFormat != "" && m.OutputFormats != nil && !slices.Contains(m.OutputFormats, req.OutputFormat) {
		to := ""
		if slices.Contains(m.OutputFormats, "png") {
			to = "png"
		}
		change("output_format", req.OutputFormat, to)
		req.OutputFormat = to
	}
	if req.OutputCompression != nil && req.OutputFormat != "jpeg" && req.OutputFormat != "webp" {
		change("output_compression", fmt.Sprint(*req.OutputCompression), "")
		req.OutputCompression = nil
	}
	if req.Background != "" && m.Backgrounds != nil && !slices.Contains(m.Backgrounds, req.Background) {
		change("background", req.Background, "")
		req.Background = ""
	}
	if req.Style != "" && m.Styles != nil && !slices.Contains(m.Styles, req.Style) {
		change("style", req.Style, "")
		req.Style = ""
	}
	if req.Moderation != "" && m.Moderations != nil && !slices.Contains(m.Moderations, req.Moderation) {
		change("moderation", req.Moderation, "")
		req.Moderation = ""
	}
	return warnings, ""
}

// nearestSize returns the listed size closest to size in aspect ratio, then
// in area, or "" when none is listed.
func nearestSize(size string, sizes []string) string {
	w, h, ok := parseSizeWxH(size)
	if !ok {
		return ""
	}
	best, bestRatio, bestArea := "", math.Inf(1), math.Inf(1)
	for _, s := range sizes {
		sw, sh, ok := parseSizeWxH(s)
		if !ok {
			continue
		}
		ratio := math.Abs(math.Log(float64(sw)/float64(sh)) - math.Log(float64(w)/float64(h)))
		area := math.Abs(math.Log(float64(sw*sh) / float64(w*h)))
		if ratio < bestRatio-1e-9 || (math.Abs(ratio-bestRatio) <= 1e-9 && area < bestArea) {
			best, bestRatio, bestArea = s, ratio, area
		}
	}
	return best
}
