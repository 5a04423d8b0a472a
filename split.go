package imagegen

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// executeSplit makes a request for more images than the model allows per
// call as several concurrent calls of counts[i] images, each with its own
// retries, fallback and budget reservation, and joins their images in order.
// When some calls fail, it returns the images that succeeded together with a
// *PartialError for the rest.
func (c *Client) executeSplit(ctx context.Context, parent *call, counts []int) (*Result, error) {
	results := make([]*Result, len(counts))
	errs := make([]error, len(counts))

	subs := make([]*call, len(counts))
	var wg sync.WaitGroup
	for i, n := range counts {
		sub := &call{req: parent.req, explicitModel: parent.explicitModel, choice: parent.choice}
		sub.req.N = n
		if parent.edit != nil {
			edit := *parent.edit
			edit.Request = sub.req
			sub.edit = &edit
		}
		subs[i] = sub
		wg.Go(func() {
			results[i], errs[i] = c.execute(ctx, sub)
		})
	}
	wg.Wait()

	// The call ends where its last sub-call that sent a request ended.
	for _, sub := range subs {
		if sub.lastProvider != "" {
			parent.lastProvider, parent.lastModel = sub.lastProvider, sub.lastModel
		}
	}

	res, err := joinResults(parent.req.N, results, errs)
	if res != nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the request for %d images was split into %d calls because model %s makes at most %d per call",
			parent.req.N, len(counts), parent.req.Model, counts[0]))
	}
	return res, err
}

// joinResults joins the results of a split request in call order.
func joinResults(requested int, results []*Result, errs []error) (*Result, error) {
	var joined *Result
	var failures []error
	var ids []string
	for i, res := range results {
		if errs[i] != nil || res == nil {
			failures = append(failures, errs[i])
			continue
		}
		if joined == nil {
			first := *res
			first.Images = nil
			first.Usage = nil
			first.Cost = Cost{Known: true}
			first.Attempts = 0
			first.Warnings = nil
			joined = &first
			if res.Usage != nil {
				usage := *res.Usage
				joined.Usage = &usage
				joined.Usage.InputTokens, joined.Usage.InputTextTokens, joined.Usage.InputImageTokens = 0, 0, 0
				joined.Usage.OutputTokens, joined.Usage.TotalTokens = 0, 0
			}
		}
		joined.Images = append(joined.Images, res.Images...)
		joined.Cost = joined.Cost.Add(res.Cost)
		joined.Attempts += res.Attempts
		joined.Warnings = append(joined.Warnings, res.Warnings...)
		joined.altered = joined.altered || res.altered
		if res.RequestID != "" {
			ids = append(ids, res.RequestID)
		}
		if joined.Usage != nil && res.Usage != nil {
			joined.Usage.InputTokens += res.Usage.InputTokens
			joined.Usage.InputTextTokens += res.Usage.InputTextTokens
			joined.Usage.InputImageTokens += res.Usage.InputImageTokens
			joined.Usage.OutputTokens += res.Usage.OutputTokens
			joined.Usage.TotalTokens += res.Usage.TotalTokens
		} else {
			// A call without usage makes the sum an undercount: drop it.
			joined.Usage = nil
		}
	}

	if joined == nil {
		return nil, joinFailures(failures)
	}
	joined.RequestID = strings.Join(ids, ",")
	if len(failures) > 0 {
		return joined, &PartialError{Requested: requested, Returned: len(joined.Images), Err: errors.Join(failures...)}
	}
	return joined, nil
}

// joinFailures returns the error of a split request whose calls all failed:
// one *AttemptsError holding every call's attempts when each failure is
// one, the failure itself when there is one, else their errors.Join.
func joinFailures(failures []error) error {
	if len(failures) == 1 {
		return failures[0]
	}
	merged := &AttemptsError{}
	for _, err := range failures {
		ae, ok := err.(*AttemptsError)
		if !ok {
			return errors.Join(failures...)
		}
		merged.Errors = append(merged.Errors, ae.Errors...)
		merged.Skipped = append(merged.Skipped, ae.Skipped...)
		if merged.Context == nil {
			merged.Context = ae.Context
		}
	}
	return merged
}
