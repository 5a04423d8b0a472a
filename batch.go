package imagegen

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/imagegen-go/imagegen/provider"
)

// SplitN returns how many images to ask for in each call when a request for
// n images goes to a model that makes at most maxN per call: as many calls of
// maxN as fit, then one for the remainder. An n of 0 or less means 1, and a
// maxN of 0 or less means no per-call limit.
func SplitN(n, maxN int) []int {
	n = max(n, 1)
	if maxN <= 0 || n <= maxN {
		return []int{n}
	}
	calls := make([]int, 0, (n+maxN-1)/maxN)
	for n > 0 {
		count := min(n, maxN)
		calls = append(calls, count)
		n -= count
	}
	return calls
}

// PartialError reports a request split into several calls of which some
// failed. The Client returns it together with a Response holding the images
// of the calls that succeeded. It unwraps to the failures, so errors.Is and
// errors.As find their classes.
type PartialError struct {
	// Requested is the number of images the request asked for, and
	// Returned the number in the response.
	Requested, Returned int
	// Err joins the errors of the failed calls.
	Err error
}

// Error states how many images were returned and why the rest failed.
func (e *PartialError) Error() string {
	if e == nil {
		return "imagegen: <nil error>"
	}
	return fmt.Sprintf("imagegen: returned %d of %d images; the other calls failed: %v", e.Returned, e.Requested, e.Err)
}

// Unwrap returns the failures.
func (e *PartialError) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// batchResult is the outcome of one call of a split request.
type batchResult struct {
	// requested is the n sent in the call.
	requested int
	resp      *provider.Response
	err       error
}

// joinBatches joins the results of a split request's calls, in call order.
//
// When every call failed it returns no response and the error (joined when
// several). Otherwise the response holds the images of the successful calls
// in order, and a *PartialError describes any failures. Usage is the sum over
// the successful calls, or nil when one of them reported none, so that cost
// is estimated rather than undercounted. Size, quality, background, format
// and model come from the first successful call, rate limits from the last
// one that reported them, and RequestID lists the distinct ids.
func joinBatches(results []batchResult) (*provider.Response, error) {
	if len(results) == 0 {
		return nil, errors.New("imagegen: no calls to join")
	}

	var (
		joined    *provider.Response
		failures  []error
		requested int
		ids       []string
		usage     = &provider.Usage{}
	)
	for _, result := range results {
		requested += result.requested
		if result.err != nil || result.resp == nil {
			err := result.err
			if err == nil {
				err = errors.New("imagegen: a call returned neither a response nor an error")
			}
			failures = append(failures, err)
			continue
		}

		resp := result.resp
		if joined == nil {
			first := *resp
			first.Images = nil
			first.Usage = nil
			joined = &first
		}
		joined.Images = append(joined.Images, resp.Images...)
		if resp.RequestID != "" && !slices.Contains(ids, resp.RequestID) {
			ids = append(ids, resp.RequestID)
		}
		if resp.RateLimit.Requests.Known || resp.RateLimit.Tokens.Known {
			joined.RateLimit = resp.RateLimit
		}
		if usage != nil && resp.Usage != nil {
			usage.InputTokens += resp.Usage.InputTokens
			usage.InputTextTokens += resp.Usage.InputTextTokens
			usage.InputImageTokens += resp.Usage.InputImageTokens
			usage.OutputTokens += resp.Usage.OutputTokens
			usage.TotalTokens += resp.Usage.TotalTokens
		} else {
			usage = nil
		}
	}

	if joined == nil {
		if len(failures) == 1 {
			return nil, failures[0]
		}
		return nil, errors.Join(failures...)
	}
	joined.Usage = usage
	joined.RequestID = strings.Join(ids, ",")
	if len(failures) == 0 {
		return joined, nil
	}
	return joined, &PartialError{
		Requested: requested,
		Returned:  len(joined.Images),
		Err:       errors.Join(failures...),
	}
}
