package imagegen

import (
	"fmt"
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
