package imagegen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// FallbackPolicy decides which failures move a call to the next provider or
// model. Rate limits with a wait over RetryPolicy.MaxWait, quota,
// entitlement, authentication and not-found failures, and retryable failures
// that outlast RetryPolicy.MaxAttempts always move on. The zero value stops
// on invalid requests and content rejections, which would fail everywhere or
// be billed again.
type FallbackPolicy struct {
	// OnContentRejected moves a call whose prompt or image a provider's
	// moderation rejected to the next provider, whose policy may differ.
	OnContentRejected bool

	// OnInvalidRequest moves a call that a provider rejected as invalid to
	// the next provider, for gateways whose vocabularies differ.
	OnInvalidRequest bool
}

// WithFallback sets which failures move a call to the next provider.
func WithFallback(p FallbackPolicy) Option {
	return func(c *config) error {
		c.fallback = p
		return nil
	}
}

// WithStrategy sets the order in which a call tries the providers and their
// models. Default OrderPriority: the order of WithProvider and WithModels.
func WithStrategy(s Strategy) Option {
	return func(c *config) error {
		switch s {
		case OrderPriority, OrderCost, OrderLatency, OrderWeightedRandom:
			c.strategy = s
			return nil
		}
		return fmt.Errorf("imagegen: WithStrategy: unknown strategy %d: use OrderPriority, OrderCost, OrderLatency or OrderWeightedRandom", s)
	}
}

// WithBreaker sets the circuit breaker settings used for every provider.
// Each provider has its own breaker; see BreakerSettings. A zero
// ProbeTimeout is raised above RetryPolicy.AttemptTimeout so that a slow
// probe is not taken for a lost one.
func WithBreaker(s BreakerSettings) Option {
	return func(c *config) error {
		if _, err := s.withDefaults(); err != nil {
			return err
		}
		c.breaker = s
		return nil
	}
}

// WithWeight sets the provider's share of calls under OrderWeightedRandom.
// Default 1.
func WithWeight(w float64) ProviderOption {
	return func(pc *providerConfig) error {
		if !(w > 0) {
			return fmt.Errorf("WithWeight: invalid weight %g: must be positive", w)
		}
		pc.weight = w
		return nil
	}
}

// stepAfter applies the fallback policy to a failure for which the retry
// policy returned stepStop.
func (p FallbackPolicy) stepAfter(e *Error, s step) step {
	if s != stepStop {
		return s
	}
	switch {
	case e.Class == ClassContentRejected && p.OnContentRejected,
		e.Class == ClassInvalidRequest && p.OnInvalidRequest:
		return stepNext
	}
	return s
}

// order sorts the candidates by the Client's strategy. The default priority
// strategy keeps the configured order and costs nothing.
func (c *Client) order(cl *call, cands []candidate) []candidate {
	if c.strategy == OrderPriority || len(cands) < 2 {
		return cands
	}

	keys := make([]orderCandidate, len(cands))
	for i, cand := range cands {
		keys[i] = orderCandidate{Provider: cand.entry.name, Model: cand.model, Index: i, Weight: cand.entry.weight}
		if c.strategy == OrderCost {
			req := cl.req
			req.Model = cand.model
			keys[i].EstimatedCost = c.estimate(&req)
		}
	}

	// A nil source makes OrderWeightedRandom use math/rand/v2's global
	// source, which is safe for concurrent use.
	orderCandidates(c.strategy, keys, c.latency, nil)

	out := make([]candidate, len(cands))
	for i, k := range keys {
		out[i] = cands[k.Index]
	}
	return out
}

// admit checks with the candidate's breaker whether an attempt may be sent. It
// reports state changes to hooks and the log, outside the breaker's lock.
func (c *Client) admit(ctx context.Context, cand *candidate, now time.Time) (breakerTicket, *Error) {
	ticket, change, err := cand.entry.breaker.allow(now)
	if change != nil {
		c.reportBreaker(ctx, change)
	}
	if err == nil {
		return ticket, nil
	}

	// The rejection takes the class of the failure that opened the breaker,
	// such as quota exceeded, so that callers see why the provider is out.
	class := ClassServer
	msg := "circuit breaker open"
	var open *BreakerOpenError
	if errors.As(err, &open) {
		if open.Cause != nil {
			class = classOf(open.Cause)
		}
		if !open.Until.IsZero() {
			msg += " until " + open.Until.UTC().Format(time.RFC3339)
		}
		if open.Cause != nil {
			msg += " after " + classOf(open.Cause).String()
		}
	}
	return ticket, &Error{Provider: cand.entry.name, Model: cand.model, Class: class, Message: msg, Err: err}
}

// recordBreaker reports an attempt's outcome to the candidate's breaker.
func (c *Client) recordBreaker(ctx context.Context, cand *candidate, ticket breakerTicket, e *Error, now time.Time) {
	var err error
	class := ClassUnknown
	if e != nil {
		err, class = e, e.Class
	}
	if change := cand.entry.breaker.record(ticket, err, class, now); change != nil {
		c.reportBreaker(ctx, change)
	}
}

func (c *Client) reportBreaker(ctx context.Context, change *BreakerEvent) {
	c.onBreakerChange(ctx, *change)
	c.logger.LogAttrs(ctx, slog.LevelWarn, "imagegen: circuit breaker changed state",
		slog.String("provider", change.Provider), slog.String("from", change.From.String()),
		slog.String("to", change.To.String()), slog.Any("cause", change.Cause))
}

// failsWholeProvider reports whether a failure rules out the provider's
// other models for the rest of the call. Account-level failures, an
// unreachable service and an open breaker do. Failures that may be specific
// to one model do not: not found, rate limits and overload, which services
// count per model.
func failsWholeProvider(e *Error) bool {
	switch e.Class {
	case ClassQuotaExceeded, ClassNotEntitled, ClassAuthentication, ClassNetwork:
		return true
	}
	return errors.Is(e, ErrBreakerOpen)
}

// candidates lists the providers and models that can serve the call, in
// the order they are tried.
func (c *Client) candidates(cl *call) []candidate {
	out := cl.candidateBuf[:0]
	for _, e := range c.providers {
		if cl.edit != nil && e.editor == nil {
			continue
		}
		if len(e.models) == 0 {
			out = append(out, candidate{entry: e, model: cl.req.Model})
			continue
		}
		if cl.explicitModel {
			for _, m := range e.models {
				if m == cl.req.Model {
					out = append(out, candidate{entry: e, model: m})
				}
			}
			continue
		}
		for _, m := range e.models {
			out = append(out, candidate{entry: e, model: m})
		}
	}
	return out
}

// plan returns the candidates of a call, without those whose model is
// retired on a provider that enforces retirement. When that leaves none, the
// error names the shutdown date and the replacement.
func (c *Client) plan(cl *call) ([]candidate, error) {
	cands := c.candidates(cl)

	var retiredErr error
	if !c.allowRetired {
		var now time.Time
		kept := cands[:0]
		for _, cand := range cands {
			if cand.entry.enforcesRetirement {
				if now.IsZero() {
					now = time.Now()
				}
				if err := c.catalog.CheckRetired(cand.model, now); err != nil {
					retiredErr = err
					continue
				}
			}
			kept = append(kept, cand)
		}
		cands = kept
	}

	cands, skipped := c.adaptCandidates(cl, cands)
	if len(cands) == 0 {
		switch {
		case len(skipped) > 0:
			return nil, &ValidationError{Field: "model", Value: cl.req.Model,
				Reason: "no configured provider and model can serve the request: " + strings.Join(skipped, "; ")}
		case retiredErr != nil:
			return nil, retiredErr
		}
		return nil, c.noCandidateError(cl)
	}
	return c.order(cl, cands), nil
}

func (c *Client) noCandidateError(cl *call) error {
	if cl.edit != nil {
		return &ValidationError{Field: "provider", Reason: "no configured provider supports image edits (provider.Editor)"}
	}
	return &ValidationError{Field: "model", Value: cl.req.Model,
		Reason: "no configured provider serves this model: add it to a provider's WithModels or leave the model empty"}
}
