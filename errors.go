package imagegen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/imagegen-go/imagegen/internal/httpx"
	"github.com/imagegen-go/imagegen/provider"
)

// Class is the kind of a failure. It decides whether the Client retries the
// same provider, moves to the next one or stops. The zero value is
// ClassUnknown.
type Class int

// The failure classes. Each has a sentinel error (ErrRateLimited and so on)
// that matches any *Error of that class with errors.Is.
const (
	// ClassUnknown is a failure that could not be classified. It is not retried.
	ClassUnknown Class = iota
	// ClassRateLimited is a temporary rate limit (HTTP 429 rate_limit_exceeded).
	ClassRateLimited
	// ClassQuotaExceeded is exhausted credit, quota or billing limit. Waiting does not help.
	ClassQuotaExceeded
	// ClassNotEntitled is an account that may not use the model, such as an
	// organization that is not verified (HTTP 403).
	ClassNotEntitled
	// ClassAuthentication is a missing, invalid or revoked API key (HTTP 401).
	ClassAuthentication
	// ClassInvalidRequest is a request the service rejected as malformed (HTTP 400, 422).
	ClassInvalidRequest
	// ClassContentRejected is a prompt or image blocked by moderation.
	ClassContentRejected
	// ClassNotFound is an unknown model, deployment or endpoint (HTTP 404).
	ClassNotFound
	// ClassServer is a server error or overload (HTTP 5xx, 409).
	ClassServer
	// ClassTimeout is an attempt that ran out of time: HTTP 408 or 504, the
	// Client's per-attempt timeout or the caller's deadline. The service may
	// have billed it.
	ClassTimeout
	// ClassNetwork is a connection that failed before the request was sent,
	// such as a refused connection or a DNS failure. Nothing was billed.
	ClassNetwork
	// ClassOutcomeUnknown is a request that was sent but got no usable
	// response, such as a connection reset while waiting or a 2xx response
	// without a readable image. The service may have billed it.
	ClassOutcomeUnknown
	// ClassCanceled is a call canceled by the caller's context. A request
	// canceled in flight may still have been billed, and budgets count it.
	ClassCanceled
	// ClassBudgetExceeded is a call that a spending cap (WithBudget or
	// GenerateOptions.MaxCostPerImage) rejected before any request, also
	// when the cap could not price the call (ErrCostUnknown). Its sentinel
	// is ErrBudgetExceeded.
	ClassBudgetExceeded
)

// numClasses is the number of classes.
const numClasses = int(ClassBudgetExceeded) + 1

var classNames = [numClasses]string{
	ClassUnknown:         "unknown",
	ClassRateLimited:     "rate_limited",
	ClassQuotaExceeded:   "quota_exceeded",
	ClassNotEntitled:     "not_entitled",
	ClassAuthentication:  "authentication",
	ClassInvalidRequest:  "invalid_request",
	ClassContentRejected: "content_rejected",
	ClassNotFound:        "not_found",
	ClassServer:          "server_error",
	ClassTimeout:         "timeout",
	ClassNetwork:         "network",
	ClassOutcomeUnknown:  "outcome_unknown",
	ClassCanceled:        "canceled",
	ClassBudgetExceeded:  "budget_exceeded",
}

// String returns the class's snake_case name, such as "rate_limited", which is
// also its label in logs and metrics.
func (c Class) String() string {
	if c < 0 || int(c) >= len(classNames) {
		return "class(" + strconv.Itoa(int(c)) + ")"
	}
	return classNames[c]
}

// Classes returns every class in declaration order, for code that reports a
// figure per class.
func Classes() []Class {
	out := make([]Class, len(classNames))
	for i := range out {
		out[i] = Class(i)
	}
	return out
}

// MayHaveBilled reports whether a failure of this class may still have been
// billed by the service, because the request reached it and its outcome is
// not known.
func (c Class) MayHaveBilled() bool {
	return c == ClassTimeout || c == ClassOutcomeUnknown
}

// Sentinel errors, one per class, for errors.Is. An *Error matches the
// sentinel of its Class.
var (
	ErrUnknown         = errors.New("imagegen: unknown error")
	ErrRateLimited     = errors.New("imagegen: rate limited")
	ErrQuotaExceeded   = errors.New("imagegen: quota exceeded")
	ErrNotEntitled     = errors.New("imagegen: not entitled")
	ErrAuthentication  = errors.New("imagegen: authentication failed")
	ErrInvalidRequest  = errors.New("imagegen: invalid request")
	ErrContentRejected = errors.New("imagegen: content rejected")
	ErrNotFound        = errors.New("imagegen: not found")
	ErrServer          = errors.New("imagegen: server error")
	ErrTimeout         = errors.New("imagegen: timed out")
	ErrNetwork         = errors.New("imagegen: network error")
	ErrOutcomeUnknown  = errors.New("imagegen: outcome unknown")
	ErrCanceled        = errors.New("imagegen: canceled")
)

var classSentinels = [numClasses]error{
	ClassUnknown:         ErrUnknown,
	ClassRateLimited:     ErrRateLimited,
	ClassQuotaExceeded:   ErrQuotaExceeded,
	ClassNotEntitled:     ErrNotEntitled,
	ClassAuthentication:  ErrAuthentication,
	ClassInvalidRequest:  ErrInvalidRequest,
	ClassContentRejected: ErrContentRejected,
	ClassNotFound:        ErrNotFound,
	ClassServer:          ErrServer,
	ClassTimeout:         ErrTimeout,
	ClassNetwork:         ErrNetwork,
	ClassOutcomeUnknown:  ErrOutcomeUnknown,
	ClassCanceled:        ErrCanceled,
	ClassBudgetExceeded:  ErrBudgetExceeded,
}

// Sentinel returns the sentinel error of c, such as ErrRateLimited.
func (c Class) Sentinel() error {
	if c < 0 || int(c) >= len(classSentinels) {
		return ErrUnknown
	}
	return classSentinels[c]
}

// Error is a failed call to one provider. Use errors.As to read it and
// errors.Is with a class sentinel (ErrRateLimited, ...) to test its class.
//
// Its text and log value never contain an API key: provider messages are
// scrubbed of anything that looks like one. A nil *Error prints as a
// placeholder instead of panicking.
type Error struct {
	// Provider is the name of the provider that failed.
	Provider string
	// Model is the model that was requested, when known.
	Model string
	// StatusCode is the HTTP status, or 0 when no response arrived.
	StatusCode int
	// Class is the kind of failure.
	Class Class
	// Type, Code and Param are the service's error type, code and the
	// request field it names, as sent in its error body and scrubbed of
	// secrets like Message.
	Type  string
	Code  string
	Param string
	// Message is the service's message, scrubbed of secrets.
	Message string
	// RequestID is the service's id of the call (x-request-id), for support.
	RequestID string
	// RetryAfter is how long the service asked to wait before the next
	// request, from Retry-After or a similar header; 0 when it did not ask.
	RetryAfter time.Duration
	// ShouldRetry is the service's x-should-retry header: nil when absent.
	// False stops retries of a retryable class on the same provider; true
	// makes an unclassified failure retryable. It never makes the Client
	// retry a quota, entitlement, authentication or not-found failure.
	ShouldRetry *bool
	// RateLimit is the quota state from the response's rate-limit headers.
	RateLimit provider.RateLimit
	// Err is the underlying cause, such as a *url.Error, or nil.
	Err error
}

// Error returns a one-line description: provider, class, status, code,
// message and request id.
func (e *Error) Error() string {
	if e == nil {
		return "imagegen: <nil error>"
	}

	var b strings.Builder
	b.WriteString("imagegen: ")
	if e.Provider != "" {
		b.WriteString(e.Provider)
		b.WriteString(": ")
	}
	b.WriteString(strings.ReplaceAll(e.Class.String(), "_", " "))
	if e.StatusCode != 0 || e.Code != "" {
		b.WriteString(" (")
		if e.StatusCode != 0 {
			b.WriteString(strconv.Itoa(e.StatusCode))
		}
		if e.Code != "" {
			if e.StatusCode != 0 {
				b.WriteByte(' ')
			}
			b.WriteString(e.Code)
		}
		b.WriteByte(')')
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	} else if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(Redact(e.Err.Error()))
	}
	if e.RequestID != "" {
		b.WriteString(" [request ")
		b.WriteString(e.RequestID)
		b.WriteByte(']')
	}
	if e.RetryAfter > 0 {
		b.WriteString(" (retry after ")
		b.WriteString(e.RetryAfter.Round(time.Millisecond).String())
		b.WriteByte(')')
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// Is reports whether target is the sentinel of e's class.
func (e *Error) Is(target error) bool {
	return e != nil && target == e.Class.Sentinel()
}

// LogValue returns the error's fields as a slog group, without secrets.
func (e *Error) LogValue() slog.Value {
	if e == nil {
		return slog.StringValue("<nil>")
	}
	attrs := []slog.Attr{
		slog.String("provider", e.Provider),
		slog.String("class", e.Class.String()),
	}
	if e.Model != "" {
		attrs = append(attrs, slog.String("model", e.Model))
	}
	if e.StatusCode != 0 {
		attrs = append(attrs, slog.Int("status", e.StatusCode))
	}
	if e.Code != "" {
		attrs = append(attrs, slog.String("code", e.Code))
	}
	if e.RequestID != "" {
		attrs = append(attrs, slog.String("request_id", e.RequestID))
	}
	if e.RetryAfter > 0 {
		attrs = append(attrs, slog.Duration("retry_after", e.RetryAfter))
	}
	if e.Message != "" {
		attrs = append(attrs, slog.String("message", e.Message))
	} else if e.Err != nil {
		attrs = append(attrs, slog.String("cause", Redact(e.Err.Error())))
	}
	return slog.GroupValue(attrs...)
}

// APIErrorInfo describes a service's response to a failed HTTP call. It is
// the input of NewAPIError.
type APIErrorInfo struct {
	Provider   string
	Model      string
	StatusCode int
	Header     http.Header
	// Type, Code, Param and Message come from the error body; they may be empty.
	Type    string
	Code    string
	Param   string
	Message string
	// RequestID overrides the x-request-id header when not empty.
	RequestID string
	// Now is the time the response arrived, used for HTTP-date Retry-After
	// values. The zero value means time.Now().
	Now time.Time
}

// NewAPIError builds a classified *Error from a service's HTTP error response.
// Providers call it so that every provider classifies failures the same way.
// The type, code, param and message are scrubbed of secrets after the
// classification has read them.
func NewAPIError(info APIErrorInfo) *Error {
	now := info.Now
	if now.IsZero() {
		now = time.Now()
	}

	e := &Error{
		Provider:   info.Provider,
		Model:      info.Model,
		StatusCode: info.StatusCode,
		Type:       Redact(info.Type),
		Code:       Redact(info.Code),
		Param:      Redact(info.Param),
		Message:    Redact(strings.TrimSpace(info.Message)),
		RequestID:  info.RequestID,
	}
	if info.Header != nil {
		if e.RequestID == "" {
			e.RequestID = info.Header.Get("X-Request-Id")
		}
		if d, ok := httpx.RetryAfter(info.Header, now); ok {
			e.RetryAfter = d
		}
		if retry, ok := httpx.ShouldRetry(info.Header); ok {
			e.ShouldRetry = &retry
		}
		e.RateLimit = httpx.RateLimit(info.Header)
	}
	e.Class = classifyAPI(info.StatusCode, info.Type, info.Code, info.Message)

	// A 429 without Retry-After still reports when its window resets.
	if e.Class == ClassRateLimited && e.RetryAfter == 0 {
		e.RetryAfter = exhaustedReset(e.RateLimit)
	}
	return e
}

// exhaustedReset returns the longest reset among the windows that are spent.
func exhaustedReset(rl provider.RateLimit) time.Duration {
	var d time.Duration
	for _, q := range []provider.Quota{rl.Requests, rl.Tokens} {
		if q.Known && q.Remaining == 0 && q.Reset > d {
			d = q.Reset
		}
	}
	return d
}

// classifyAPI maps a service's error response to a class. Codes and types are
// checked before the status, because services reuse statuses: OpenAI returns
// 429 both for a rate limit and for exhausted credit.
func classifyAPI(status int, typ, code, message string) Class {
	typ = strings.ToLower(typ)
	code = strings.ToLower(code)
	msg := strings.ToLower(message)

	switch {
	case code == "insufficient_quota" || typ == "insufficient_quota" ||
		code == "billing_hard_limit_reached" || code == "billing_not_active" ||
		strings.Contains(msg, "exceeded your current quota") || strings.Contains(msg, "billing hard limit"):
		return ClassQuotaExceeded
	case code == "moderation_blocked" || code == "content_policy_violation" ||
		code == "content_filter" || code == "responsibleaipolicyviolation" ||
		strings.Contains(msg, "safety system"):
		return ClassContentRejected
	case code == "invalid_api_key" || code == "invalid_authentication" || status == http.StatusUnauthorized:
		return ClassAuthentication
	case code == "model_not_found" || code == "deploymentnotfound" || status == http.StatusNotFound:
		return ClassNotFound
	case code == "rate_limit_exceeded" || code == "ratelimitexceeded" || status == http.StatusTooManyRequests:
		return ClassRateLimited
	case status == http.StatusForbidden:
		return ClassNotEntitled
	case status == http.StatusRequestTimeout || status == http.StatusGatewayTimeout:
		return ClassTimeout
	case status == http.StatusConflict || status >= 500:
		return ClassServer
	case typ == "server_error":
		return ClassServer
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity ||
		status == http.StatusRequestEntityTooLarge || typ == "invalid_request_error":
		return ClassInvalidRequest
	}
	return ClassUnknown
}

// NewTransportError builds a classified *Error for a call that got no HTTP
// response. sent reports whether the request may have reached the service:
// a failure after sending is ClassOutcomeUnknown (or ClassTimeout when a
// deadline ended it), one before sending is ClassNetwork. Context
// cancellation is ClassCanceled.
func NewTransportError(providerName, model string, err error, sent bool) *Error {
	return &Error{
		Provider: providerName,
		Model:    model,
		Class:    classifyTransport(err, sent),
		Err:      err,
	}
}

func classifyTransport(err error, sent bool) Class {
	var netErr net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return ClassCanceled
	case errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return ClassTimeout
	case !sent,
		errors.Is(err, syscall.ECONNREFUSED),
		isDNSError(err):
		return ClassNetwork
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return ClassOutcomeUnknown
	}
	return ClassOutcomeUnknown
}

func isDNSError(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr)
}

// classify returns the class of any error a provider returned.
func classify(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	var v *ValidationError
	if errors.As(err, &v) {
		return ClassInvalidRequest
	}
	for c := ClassRateLimited; int(c) < len(classSentinels); c++ {
		if errors.Is(err, c.Sentinel()) {
			return c
		}
	}
	if errors.Is(err, ErrCostUnknown) {
		return ClassBudgetExceeded
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return classifyTransport(err, true)
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return classifyTransport(err, true)
	}
	return ClassUnknown
}

// asError returns err as an *Error, wrapping foreign errors with their class.
func asError(err error, providerName, model string) *Error {
	var e *Error
	if errors.As(err, &e) {
		if e.Provider == "" || e.Model == "" {
			cp := *e
			if cp.Provider == "" {
				cp.Provider = providerName
			}
			if cp.Model == "" {
				cp.Model = model
			}
			return &cp
		}
		return e
	}
	return &Error{Provider: providerName, Model: model, Class: classify(err), Err: err}
}

// ValidationError is a request rejected by the Client before any network call.
// It matches ErrInvalidRequest with errors.Is.
type ValidationError struct {
	// Field is the option at fault, such as "size" or "n".
	Field string
	// Value is the rejected value, formatted for display.
	Value string
	// Reason describes what is wrong and how to fix it.
	Reason string
}

// Error returns "imagegen: invalid <field> <value>: <reason>".
func (e *ValidationError) Error() string {
	if e == nil {
		return "imagegen: <nil error>"
	}
	if e.Value == "" {
		return fmt.Sprintf("imagegen: invalid %s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("imagegen: invalid %s %q: %s", e.Field, e.Value, e.Reason)
}

// Is reports whether target is ErrInvalidRequest.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidRequest }

// secretPattern matches API keys and bearer tokens as services echo them in
// messages, including partly masked ones such as "sk-abc***********xyz".
var secretPattern = regexp.MustCompile(`(?i)(\bsk-[A-Za-z0-9_\-*.]{3,}|\bbearer\s+[A-Za-z0-9_\-.~+/=*]{8,}|\bapi[-_]?key[=:]\s*[A-Za-z0-9_\-*]{8,})`)

// Redact returns s with anything that looks like an API key or bearer token
// replaced by "[REDACTED]".
func Redact(s string) string {
	if !strings.Contains(strings.ToLower(s), "sk-") && !strings.Contains(strings.ToLower(s), "bearer") &&
		!strings.Contains(strings.ToLower(s), "key") {
		return s
	}
	return secretPattern.ReplaceAllString(s, "[REDACTED]")
}

// AttemptsError is returned when a call failed after trying its providers.
// Its text explains the last failure. Unwrap returns every error, the last
// attempt's first, so errors.As finds the last *Error and errors.Is matches
// the class of any attempt. When the caller's context ended the call, its
// error is included too.
type AttemptsError struct {
	// Errors holds every attempt's *Error in the order they happened. An
	// attempt is a request sent to a provider.
	Errors []*Error
	// Skipped holds, in order, why providers were passed over without a
	// request: an open circuit breaker (errors.Is ErrBreakerOpen) or a
	// rate-limit wait that would pass the context's deadline.
	Skipped []*Error
	// Context is the error of the context that ended the call: the caller's,
	// or the deadline of RetryPolicy.MaxElapsed or of a deduplicated call.
	// It is nil when the attempts ended the call.
	Context error
}

func newAttemptsError(ctx context.Context, cl *call) error {
	return &AttemptsError{Errors: cl.errs, Skipped: cl.skipped, Context: ctx.Err()}
}

// Last returns the last attempt's error or, when no request was sent, the
// last reason a provider was passed over. It returns nil when there is
// neither.
func (e *AttemptsError) Last() *Error {
	switch {
	case e == nil:
		return nil
	case len(e.Errors) > 0:
		return e.Errors[len(e.Errors)-1]
	case len(e.Skipped) > 0:
		return e.Skipped[len(e.Skipped)-1]
	}
	return nil
}

// Error describes the last failure, the number of attempts per provider and
// the providers passed over.
func (e *AttemptsError) Error() string {
	if e == nil {
		return "imagegen: <nil error>"
	}
	var b strings.Builder
	b.WriteString("imagegen: ")
	if e.Context != nil {
		b.WriteString("call ended (")
		b.WriteString(e.Context.Error())
		b.WriteString(") ")
	}
	if len(e.Errors) == 0 {
		b.WriteString("before any request was sent")
	} else {
		b.WriteString("after ")
		b.WriteString(plural(len(e.Errors), "failed attempt"))
		writeAttemptCounts(&b, e.Errors)
	}
	if len(e.Skipped) > 0 {
		b.WriteString("; passed over: ")
		for i, s := range e.Skipped {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(s.Provider)
			if s.Message != "" {
				b.WriteString(" (")
				b.WriteString(s.Message)
				b.WriteByte(')')
			}
		}
	}
	if last := e.Last(); last != nil && len(e.Errors) > 0 {
		b.WriteString("; last: ")
		b.WriteString(strings.TrimPrefix(last.Error(), "imagegen: "))
	}
	return b.String()
}

// writeAttemptCounts writes " (a: 2, b: 1)" when the attempts went to
// several providers.
func writeAttemptCounts(b *strings.Builder, errs []*Error) {
	var order []string
	counts := map[string]int{}
	for _, err := range errs {
		if counts[err.Provider] == 0 {
			order = append(order, err.Provider)
		}
		counts[err.Provider]++
	}
	if len(order) < 2 {
		return
	}
	b.WriteString(" (")
	for i, p := range order {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(b, "%s: %d", p, counts[p])
	}
	b.WriteByte(')')
}

// Unwrap returns the last error (see Last), the caller's context error if
// any, then the other attempts' errors and the reasons for passing
// providers over, in order.
func (e *AttemptsError) Unwrap() []error {
	if e == nil {
		return nil
	}
	last := e.Last()
	out := make([]error, 0, len(e.Errors)+len(e.Skipped)+1)
	if last != nil {
		out = append(out, last)
	}
	if e.Context != nil {
		out = append(out, e.Context)
	}
	for _, err := range e.Errors {
		if err != last {
			out = append(out, err)
		}
	}
	for _, err := range e.Skipped {
		if err != last {
			out = append(out, err)
		}
	}
	return out
}

// LogValue returns the number of attempts and the last failure as a group.
func (e *AttemptsError) LogValue() slog.Value {
	if e == nil {
		return slog.StringValue("<nil>")
	}
	attrs := []slog.Attr{slog.Int("attempts", len(e.Errors))}
	if len(e.Skipped) > 0 {
		attrs = append(attrs, slog.Int("passed_over", len(e.Skipped)))
	}
	if e.Context != nil {
		attrs = append(attrs, slog.String("context", e.Context.Error()))
	}
	if last := e.Last(); last != nil {
		attrs = append(attrs, slog.Any("last", last))
	}
	return slog.GroupValue(attrs...)
}
