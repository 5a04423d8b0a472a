package imagegen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/imagegen-go/imagegen/provider"
)

// ErrNoClient is returned by the methods of a nil or zero Client.
var ErrNoClient = errors.New("imagegen: client not configured: create it with imagegen.New")

// Client generates images through one or more providers. It validates each
// request, then tries the providers in order, retrying failures that can
// succeed and moving to the next provider on failures that cannot.
//
// A Client is safe for concurrent use by multiple goroutines. Create it with
// New; the zero Client returns ErrNoClient from every call.
type Client struct {
	providers    []*providerEntry
	logger       *slog.Logger
	hooks        hookList
	retry        RetryPolicy
	retryBudget  *retryBudget
	stats        *statsRecorder
	defaultModel string
	catalog      *Catalog
	budget       *Budget
	allowRetired bool
	fallback     FallbackPolicy
	strategy     Strategy
	latency      *latencyTracker
	limiter      Limiter
	cache        Cache
	cacheOpts    CacheOptions
	dedup        bool
	dedupTimeout time.Duration
	flight       flightGroup[*flightOutcome]
	learned      learnedEstimates
}

// providerEntry is one registered provider with its static configuration.
type providerEntry struct {
	provider provider.Provider
	name     string
	models   []string
	editor   provider.Editor // nil when the provider cannot edit

	weight  float64
	breaker *circuitBreaker

	// enforcesRetirement is true when the provider's service has shut down
	// retired models (see provider.RetirementEnforcer).
	enforcesRetirement bool
}

// New returns a Client configured by opts. It fails, before any network
// call, when an option is invalid or no provider is given.
func New(opts ...Option) (*Client, error) {
	var cfg config
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	if len(cfg.providers) == 0 {
		return nil, errors.New("imagegen: no provider: add one with imagegen.WithProvider")
	}

	c := &Client{
		logger:       cfg.logger,
		hooks:        hookList(cfg.hooks),
		retry:        cfg.retry.withDefaults(),
		defaultModel: cfg.defaultModel,
		catalog:      cfg.catalog,
		budget:       cfg.budget,
		allowRetired: cfg.allowRetired,
		fallback:     cfg.fallback,
		strategy:     cfg.strategy,
		latency:      newLatencyTracker(),
		cache:        cfg.cache,
		cacheOpts:    cfg.cacheOpts,
		dedup:        cfg.dedup,
		dedupTimeout: cfg.dedupTimeout,
	}
	if c.catalog == nil {
		c.catalog = DefaultCatalog()
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.defaultModel == "" {
		c.defaultModel = DefaultModel
	}
	c.retryBudget = newRetryBudget(c.retry.RetryBudget)
	c.stats = newStatsRecorder(time.Now())

	breakerSettings := cfg.breaker
	if breakerSettings.ProbeTimeout == 0 {
		breakerSettings.ProbeTimeout = c.retry.AttemptTimeout + time.Minute
	}
	breakerSettings, err := breakerSettings.withDefaults()
	if err != nil {
		return nil, err
	}

	local, ok := cfg.limiter.(*LocalLimiter)
	if cfg.limiter == nil {
		local = NewLocalLimiter(WithLimiterLogger(c.logger))
		ok = true
	}
	c.limiter = cfg.limiter
	if c.limiter == nil {
		c.limiter = local
	}

	seen := make(map[string]bool, len(cfg.providers))
	for _, pc := range cfg.providers {
		name := pc.provider.Name()
		if name == "" {
			return nil, errors.New("imagegen: a provider has an empty Name(): every provider needs a unique name")
		}
		if seen[name] {
			return nil, fmt.Errorf("imagegen: duplicate provider name %q: give each provider a unique name", name)
		}
		seen[name] = true

		e := &providerEntry{provider: pc.provider, name: name, models: pc.models, weight: pc.weight}
		if e.weight == 0 {
			e.weight = 1
		}
		e.breaker = newCircuitBreaker(name, breakerSettings)
		if err := configureLimits(local, ok, name, &pc); err != nil {
			return nil, err
		}
		e.editor, _ = pc.provider.(provider.Editor)
		if re, ok := pc.provider.(provider.RetirementEnforcer); ok {
			e.enforcesRetirement = re.EnforcesRetirement()
		}
		c.providers = append(c.providers, e)
	}
	return c, nil
}

// Generate creates images from prompt.
//
// Before any network call it returns one of these errors: a
// *ValidationError for an invalid option, a *RetiredError for a model that
// every provider has shut down, an error matching ErrBudgetExceeded when the
// call does not fit the budget, or an *Error that wraps ctx's error when ctx
// is already done. When every
// attempt failed it returns an *AttemptsError. When the service returned
// fewer images than requested, or a request split into several calls (see
// Catalog.MaxImagesPerCall) partly failed, it returns the images it got
// together with a *PartialError.
func (c *Client) Generate(ctx context.Context, prompt string, opts GenerateOptions) (*Result, error) {
	if c == nil || len(c.providers) == 0 {
		return nil, ErrNoClient
	}
	cl := &call{explicitModel: opts.Model != ""}
	if err := c.prepare(cl, prompt, &opts); err != nil {
		return nil, c.reject(ctx, err)
	}
	if err := c.catalog.Validate(&cl.req); err != nil {
		return nil, c.reject(ctx, err)
	}
	return c.run(ctx, cl)
}

// Edit creates images from prompt and one or more input images. Only
// providers that implement provider.Editor are used.
func (c *Client) Edit(ctx context.Context, prompt string, images []provider.File, opts EditOptions) (*Result, error) {
	if c == nil || len(c.providers) == 0 {
		return nil, ErrNoClient
	}
	cl := &call{explicitModel: opts.Model != ""}
	if err := c.prepare(cl, prompt, &opts.GenerateOptions); err != nil {
		return nil, c.reject(ctx, err)
	}
	if err := validateEditImages(images); err != nil {
		return nil, c.reject(ctx, err)
	}
	cl.edit = &provider.EditRequest{Request: cl.req, Images: images, Mask: opts.Mask, InputFidelity: opts.InputFidelity}
	if err := c.catalog.ValidateEdit(cl.edit); err != nil {
		return nil, c.reject(ctx, err)
	}
	return c.run(ctx, cl)
}

// reject reports a call that failed validation to hooks and statistics,
// like any other call, and returns err.
func (c *Client) reject(ctx context.Context, err error) error {
	c.onDone(ctx, DoneEvent{Err: err, Class: classOf(err)})
	return err
}

// call is the state of one Generate or Edit call.
type call struct {
	req  provider.Request
	edit *provider.EditRequest // nil for Generate

	explicitModel  bool
	cachePolicy    CachePolicy
	cacheTTL       time.Duration
	cacheNamespace string
	choice         *Choice    // the catalog's choice, or nil
	attempts       int        // provider calls made, across providers
	errs           []*Error   // every attempt's error, in order
	skipped        []*Error   // reasons candidates were passed over without a request
	possiblyBilled int        // attempts sent whose outcome is unknown
	fallbackFrom   *candidate // the candidate failed last, until the next one sends
	fellBack       bool       // whether the call moved past a failed candidate
	lastProvider   string     // the provider of the last attempt
	lastModel      string     // the model of the last attempt

	sent         provider.Request // the request of the current attempt
	candidateBuf [4]candidate     // backing array of most calls' candidates
}

// candidate is one provider and model the call may try.
type candidate struct {
	entry *providerEntry
	model string

	// req is the call's request adapted to this candidate's model, or nil
	// when the call's request fits as it is; warnings lists the changes.
	req      *provider.Request
	warnings []string
}

// run executes a validated call and reports its outcome to hooks.
func (c *Client) run(ctx context.Context, cl *call) (*Result, error) {
	start := time.Now()
	if c.logger.Enabled(ctx, slog.LevelDebug) {
		c.logger.LogAttrs(ctx, slog.LevelDebug, "imagegen: generating",
			slog.String("prompt", truncatePrompt(cl.req.Prompt)), slog.String("model", cl.req.Model),
			slog.Int("n", cl.req.N), slog.String("size", cl.req.Size), slog.String("quality", cl.req.Quality))
	}
	var res *Result
	var err error
	if ctxErr := ctx.Err(); ctxErr != nil {
		class := ClassCanceled
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			class = ClassTimeout
		}
		err = &Error{Class: class, Message: "the context ended before the call started", Err: ctxErr}
	} else {
		res, err = c.generateShared(ctx, cl)
	}
	latency := time.Since(start)

	if res != nil {
		res.Latency = latency
	}
	c.onDone(ctx, DoneEvent{Provider: cl.lastProvider, Model: cl.lastModel, Result: res, Err: err, Class: classOf(err), Latency: latency})
	return res, err
}

// generate makes the upstream calls for cl, split into several when the
// model makes fewer images per call than requested.
func (c *Client) generate(ctx context.Context, cl *call) (*Result, error) {
	if counts := SplitN(cl.req.N, c.catalog.MaxImagesPerCall(cl.req.Model)); len(counts) > 1 {
		return c.executeSplit(ctx, cl, counts)
	}
	return c.execute(ctx, cl)
}

// execute makes one call: it reserves the budget, then tries the candidates.
func (c *Client) execute(ctx context.Context, cl *call) (res *Result, err error) {
	if c.retry.MaxElapsed > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.retry.MaxElapsed)
		defer cancel()
	}
	cands, err := c.plan(cl)
	if err != nil {
		return nil, err
	}
	if c.budget != nil {
		reservation, err := c.budget.Reserve(ctx, c.estimate(&cl.req))
		if err != nil {
			return nil, err
		}
		// Deferred, so that a panicking provider cannot leave the amount
		// reserved for good.
		defer func() { c.settle(cl, reservation, res) }()
	}
	c.retryBudget.deposit()

	res, err = c.tryCandidates(ctx, cl, cands)
	if err == nil && len(res.Images) < cl.req.N {
		// The response was billed: keep its images, and report what is missing.
		err = &PartialError{Requested: cl.req.N, Returned: len(res.Images),
			Err: &Error{Provider: res.Provider, Model: res.Model, Class: ClassOutcomeUnknown, RequestID: res.RequestID,
				Message: fmt.Sprintf("the provider returned %d of %d requested images", len(res.Images), cl.req.N)}}
	}
	return res, err
}

// settle ends the call's budget reservation: with the real cost on success,
// and counting every attempt that may have been billed.
func (c *Client) settle(cl *call, r *Reservation, res *Result) {
	if cl.possiblyBilled == 0 {
		if res == nil {
			r.Release()
		} else {
			r.Settle(res.Cost)
		}
		return
	}

	cost := Cost{Known: true}
	if res != nil {
		cost = res.Cost
	}
	estimate := c.estimate(&cl.req)
	for range cl.possiblyBilled {
		cost = cost.Add(estimate)
	}
	if !cost.Known {
		// Without a price, count the reservation itself as spent.
		r.SettleFailure(ClassOutcomeUnknown)
		return
	}
	r.Settle(cost)
}

// tryCandidates tries the candidates in order until one succeeds, the
// caller's context ends or a failure stops the call.
func (c *Client) tryCandidates(ctx context.Context, cl *call, cands []candidate) (*Result, error) {
	var failed []*providerEntry
	for i := range cands {
		cand := &cands[i]
		if slices.Contains(failed, cand.entry) {
			continue
		}

		errsBefore, skippedBefore := len(cl.errs), len(cl.skipped)
		res, next := c.tryCandidate(ctx, cl, cand)
		if res != nil {
			if cl.fellBack {
				res.Warnings = append(res.Warnings, fmt.Sprintf("fell back to %s (model %s) after %s",
					cand.entry.name, cand.model, plural(len(cl.errs), "failed attempt")))
			}
			return res, nil
		}
		if !next || ctx.Err() != nil || cl.attempts >= c.retry.MaxCallAttempts {
			break
		}

		switch {
		case len(cl.errs) > errsBefore:
			if failsWholeProvider(cl.errs[len(cl.errs)-1]) {
				failed = append(failed, cand.entry)
			}
			cl.fallbackFrom = cand
		case len(cl.skipped) > skippedBefore && failsWholeProvider(cl.skipped[len(cl.skipped)-1]):
			failed = append(failed, cand.entry)
		}
	}
	return nil, newAttemptsError(ctx, cl)
}

// plural returns "1 thing" or "n things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// tryCandidate makes the attempts on one provider and model. It returns a
// result on success; otherwise next reports whether the call may move on to
// the next candidate.
func (c *Client) tryCandidate(ctx context.Context, cl *call, cand *candidate) (res *Result, next bool) {
	var delays *delaySource
	for attempt := 1; ; attempt++ {
		res, e, sent := c.attempt(ctx, cl, cand, attempt)
		if e == nil {
			return res, false
		}
		if !sent {
			// The breaker or the limiter kept the request back: nothing
			// reached this provider, so the next one may serve the call.
			cl.skipped = append(cl.skipped, e)
			return nil, e.Class != ClassCanceled
		}
		cl.errs = append(cl.errs, e)

		switch c.fallback.stepAfter(e, c.retry.nextStep(e)) {
		case stepStop:
			return nil, false
		case stepNext:
			return nil, true
		}

		// The failure is retryable on this provider: check the limits.
		if attempt >= c.retry.MaxAttempts || cl.attempts >= c.retry.MaxCallAttempts {
			return nil, true
		}
		delay := e.RetryAfter
		if delay > c.retry.MaxWait {
			c.logger.LogAttrs(ctx, slog.LevelInfo, "imagegen: requested wait is longer than MaxWait; not retrying this provider",
				slog.String("provider", cand.entry.name), slog.Duration("wait", delay), slog.Duration("max_wait", c.retry.MaxWait))
			return nil, true
		}
		if delay == 0 {
			if delays == nil {
				delays = newDelaySource(&c.retry)
			}
			delay = delays.next()
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= delay {
			// Sleeping would use up the caller's time, but another
			// provider may still respond within it.
			return nil, true
		}
		if !c.retryBudget.withdraw() {
			c.logger.LogAttrs(ctx, slog.LevelWarn, "imagegen: retry budget exhausted; not retrying",
				slog.String("provider", cand.entry.name), slog.Any("error", e))
			return nil, true
		}

		c.onRetry(ctx, RetryEvent{
			Provider: cand.entry.name, Model: cand.model, Attempt: attempt,
			Delay: delay, Err: e, Class: e.Class,
		})
		c.logger.LogAttrs(ctx, slog.LevelInfo, "imagegen: retrying",
			slog.String("provider", cand.entry.name), slog.String("model", cand.model),
			slog.Int("attempt", attempt), slog.Duration("delay", delay), slog.Any("error", e))
		if err := sleep(ctx, delay); err != nil {
			return nil, false
		}
	}
}

// attempt makes one provider call, after the provider's circuit breaker
// admits it. sent reports whether a request went out.
func (c *Client) attempt(ctx context.Context, cl *call, cand *candidate, n int) (res *Result, e *Error, sent bool) {
	name := cand.entry.name
	now := time.Now()
	ticket, e := c.admit(ctx, cand, now)
	if e != nil {
		return nil, e, false
	}

	// Every ticket goes back to the breaker exactly once: recorded below,
	// or handed back here when the attempt ends another way, even by a
	// panic in the provider.
	recorded := false
	defer func() {
		if !recorded {
			cand.entry.breaker.cancelProbe(ticket)
		}
	}()

	key := LimitKey{Provider: name, Model: cand.model}
	release, start, e := c.waitForLimiter(ctx, key, cl.req.N, now)
	if e != nil {
		return nil, e, false
	}
	defer release()

	// The request goes out now: this candidate is where the call spends its
	// attempts, and the move from the one that failed before is a fallback.
	cl.lastProvider, cl.lastModel = name, cand.model
	if from := cl.fallbackFrom; from != nil {
		c.reportFallback(ctx, cl, from, cand)
	}
	c.onAttemptStart(ctx, AttemptStartEvent{Provider: name, Model: cand.model, Attempt: n, Images: cl.req.N})

	actx, cancel := context.WithTimeout(ctx, c.retry.AttemptTimeout)
	resp, err := c.send(actx, cl, cand)
	end := time.Now()
	latency := end.Sub(start)
	timedOut := actx.Err() != nil && ctx.Err() == nil
	cancel()
	cl.attempts++

	if err == nil {
		err = checkResponse(resp, name, cand.model)
	}
	if err != nil {
		e := attemptError(ctx, err, name, cand.model, timedOut)
		if e.Class.MayHaveBilled() || (e.Class == ClassCanceled && e.StatusCode == 0) {
			// The request went out and no usable response came back.
			cl.possiblyBilled++
		}
		recorded = true
		c.recordBreaker(ctx, cand, ticket, e, end)
		c.limiter.Observe(key, LimitFeedback{Class: e.Class, RetryAfter: e.RetryAfter, RateLimit: e.RateLimit, Images: cl.req.N})
		c.onAttemptEnd(ctx, AttemptEndEvent{
			Provider: name, Model: cand.model, Attempt: n, Latency: latency,
			Err: e, Class: e.Class, RequestID: e.RequestID,
		})
		return nil, e, true
	}

	recorded = true
	c.recordBreaker(ctx, cand, ticket, nil, end)
	c.limiter.Observe(key, LimitFeedback{Success: true, RateLimit: resp.RateLimit, Images: cl.req.N})
	if c.strategy == OrderLatency {
		c.latency.observe(name, cand.model, latency)
	}
	c.onAttemptEnd(ctx, AttemptEndEvent{
		Provider: name, Model: cand.model, Attempt: n, Latency: latency,
		Images: len(resp.Images), Usage: resp.Usage, RequestID: resp.RequestID,
	})
	return c.newResult(cl, cand, resp), nil, true
}

// minLimiterWait is the shortest Acquire that the Client reports as a
// rate-limit wait. An Acquire that does not wait still takes from tens of
// nanoseconds to a few microseconds, and reporting those would count every
// attempt as a wait.
const minLimiterWait = time.Millisecond

// waitForLimiter waits until the limiter lets a request for images through,
// starting at now, and returns the time the wait ended. A failed wait
// returns an *Error: ClassRateLimited when the wait would pass the context's
// deadline, ClassCanceled when the context ended.
func (c *Client) waitForLimiter(ctx context.Context, key LimitKey, images int, now time.Time) (release func(), end time.Time, e *Error) {
	release, err := c.limiter.Acquire(ctx, key, images)
	end = time.Now()
	if err == nil && release == nil {
		release = func() {}
	}
	wait := end.Sub(now)
	if err != nil || wait >= minLimiterWait {
		c.onRateLimitWait(ctx, RateLimitWaitEvent{Provider: key.Provider, Model: key.Model, Wait: wait, Err: err})
	}
	if err == nil {
		return release, end, nil
	}
	if ctx.Err() != nil {
		return nil, end, &Error{Provider: key.Provider, Model: key.Model, Class: ClassCanceled,
			Message: "the call ended while waiting for the rate limiter", Err: err}
	}
	return nil, end, asError(err, key.Provider, key.Model)
}

// send calls the provider with the candidate's model.
func (c *Client) send(ctx context.Context, cl *call, cand *candidate) (*provider.Response, error) {
	if cl.edit != nil {
		req := *cl.edit
		if cand.req != nil {
			req.Request = *cand.req
		}
		req.Model = cand.model
		return cand.entry.editor.Edit(ctx, &req)
	}
	// The request lives in the call, which is on the heap already, so that
	// passing its address to the provider costs no allocation. Attempts of
	// one call never overlap.
	cl.sent = cl.req
	if cand.req != nil {
		cl.sent = *cand.req
	}
	cl.sent.Model = cand.model
	return cand.entry.provider.Generate(ctx, &cl.sent)
}

// reportFallback reports the move from the candidate that failed last to
// cand, which is about to send its first request.
func (c *Client) reportFallback(ctx context.Context, cl *call, from, cand *candidate) {
	last := cl.errs[len(cl.errs)-1]
	cl.fallbackFrom, cl.fellBack = nil, true
	c.onFallback(ctx, FallbackEvent{
		FromProvider: from.entry.name, FromModel: from.model,
		ToProvider: cand.entry.name, ToModel: cand.model,
		Err: last, Class: last.Class,
	})
	c.logger.LogAttrs(ctx, slog.LevelInfo, "imagegen: falling back",
		slog.String("from", from.entry.name), slog.String("from_model", from.model),
		slog.String("to", cand.entry.name), slog.String("to_model", cand.model),
		slog.Any("error", last))
}

// attemptError classifies a failed attempt. A call cut by a deadline, the
// Client's per-attempt timeout or the caller's, is a timeout, even when the
// provider reported it as a cancellation. A call the caller canceled is
// canceled.
func attemptError(ctx context.Context, err error, name, model string, timedOut bool) *Error {
	e := asError(err, name, model)
	want := e.Class
	switch {
	case timedOut, errors.Is(ctx.Err(), context.DeadlineExceeded):
		want = ClassTimeout
	case ctx.Err() != nil:
		want = ClassCanceled
	}
	if want == e.Class && (ctx.Err() == nil || errors.Is(e, ctx.Err())) {
		return e
	}

	cp := *e
	cp.Class = want
	if ctxErr := ctx.Err(); ctxErr != nil {
		switch {
		case cp.Err == nil:
			cp.Err = ctxErr
		case !errors.Is(cp.Err, ctxErr):
			cp.Err = fmt.Errorf("%w: %w", ctxErr, cp.Err)
		}
	}
	return &cp
}

// checkResponse rejects a successful response that contains no usable
// image. The service responded, so it may have billed the request, and
// the failure's outcome is unknown.
func checkResponse(resp *provider.Response, name, model string) error {
	if resp == nil || len(resp.Images) == 0 {
		return &Error{Provider: name, Model: model, Class: ClassOutcomeUnknown, Message: "the provider returned no image"}
	}
	for i, img := range resp.Images {
		if len(img.Data) == 0 {
			return &Error{Provider: name, Model: model, Class: ClassOutcomeUnknown, RequestID: resp.RequestID,
				Message: fmt.Sprintf("the provider returned an empty image at index %d", i)}
		}
	}
	return nil
}

func (c *Client) newResult(cl *call, cand *candidate, resp *provider.Response) *Result {
	res := &Result{
		Images:    resp.Images,
		Provider:  cand.entry.name,
		Model:     resp.Model,
		Size:      resp.Size,
		Quality:   resp.Quality,
		Usage:     resp.Usage,
		RequestID: resp.RequestID,
		Attempts:  cl.attempts,
		Choice:    cl.choice,
	}
	if res.Model == "" {
		res.Model = cand.model
	}
	if res.Size == "" {
		res.Size = cl.req.Size
	}
	if res.Quality == "" {
		res.Quality = cl.req.Quality
	}

	// Cost and learned estimates use the request as this candidate sent it.
	req := cl.req
	if cand.req != nil {
		req = *cand.req
	}
	req.Model = cand.model
	res.Cost = c.catalog.ResponseCost(&req, resp)
	if c.learnsEstimates(req.Model) {
		c.learned.observe(&req, resp.Usage, len(resp.Images))
	}

	res.Warnings = append(res.Warnings, cand.warnings...)
	res.Warnings = append(res.Warnings, resp.Warnings...)
	res.altered = cand.req != nil || len(resp.Warnings) > 0
	return res
}

// maxLoggedPrompt is the number of characters of a prompt that Debug logs show.
const maxLoggedPrompt = 80

// truncatePrompt shortens a prompt for a log line.
func truncatePrompt(p string) string {
	if utf8.RuneCountInString(p) <= maxLoggedPrompt {
		return p
	}
	runes := []rune(p)
	return string(runes[:maxLoggedPrompt]) + "…"
}

// classOf returns the class of err: ClassUnknown for nil, and canceled or
// timeout when a context ended the call, whatever its last attempt's class.
func classOf(err error) Class {
	if err == nil {
		return ClassUnknown
	}
	var ae *AttemptsError
	if errors.As(err, &ae) && ae.Context != nil {
		if errors.Is(ae.Context, context.DeadlineExceeded) {
			return ClassTimeout
		}
		return ClassCanceled
	}
	return classify(err)
}
