package imagegentest

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Response is a scripted response of a Server, queued with Server.Enqueue or
// returned by a HandlerFunc.
//
// The zero Response makes the Server respond normally, as if nothing were scripted. Fields
// combine as follows:
//
//   - Delay waits before anything else happens. The wait ends early, without
//     a response, when the client goes away or the Server closes.
//   - Drop closes the connection without responding once the request body
//     has been read, so the client gets an EOF or a connection reset.
//   - Otherwise, when Status, Body and Error are all empty, the Server
//     responds normally and adds Header to its response. With only Delay set,
//     that is a slow success.
//   - Otherwise the Server sends Status (200 when zero) with Body, or with
//     Error encoded as OpenAI's error JSON when Body is empty, and Header.
//
// Every response carries an x-request-id header (unless Header sets one) and
// content-type application/json (unless Header sets another).
type Response struct {
	// Status is the HTTP status code. Zero means 200 when Body or Error is
	// set, and a normal response otherwise.
	Status int
	// Header is added to the response. The Server only reads it.
	Header http.Header
	// Body is sent as is. It takes precedence over Error.
	Body string
	// Error is encoded as {"error":{...}} when Body is empty.
	Error *APIError
	// Delay is how long to wait before responding or dropping.
	Delay time.Duration
	// Drop closes the connection instead of responding.
	Drop bool
}

// APIError is the content of OpenAI's error body,
// {"error":{"message":…,"type":…,"param":…,"code":…}}. An empty Param or
// Code is encoded as JSON null, as OpenAI does.
type APIError struct {
	Message string
	Type    string
	Param   string
	Code    string
}

// The error types and codes that OpenAI's image endpoints send, in the
// error body's "type" and "code" fields.
const (
	TypeInvalidRequest     = "invalid_request_error"
	TypeRequests           = "requests"
	TypeTokens             = "tokens"
	TypeInsufficientQuota  = "insufficient_quota"
	TypeImageGenerationErr = "image_generation_user_error"
	TypeServerError        = "server_error"

	CodeRateLimitExceeded       = "rate_limit_exceeded"
	CodeInsufficientQuota       = "insufficient_quota"
	CodeBillingHardLimitReached = "billing_hard_limit_reached"
	CodeInvalidAPIKey           = "invalid_api_key"
	CodeModelNotFound           = "model_not_found"
	CodeModerationBlocked       = "moderation_blocked"
	CodeContentPolicyViolation  = "content_policy_violation"
	CodeUnknownParameter        = "unknown_parameter"
	CodeInvalidValue            = "invalid_value"
	CodeMissingRequiredParam    = "missing_required_parameter"
	CodeUnsupportedFileMimetype = "unsupported_file_mimetype"
)

// Messages of the ready-made error responses. They follow the wording of
// OpenAI's messages as quoted in public bug reports; OpenAI may reword them,
// so match on type and code rather than on the text.
const (
	MessageInsufficientQuota = "You exceeded your current quota, please check your plan and billing details. " +
		"For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
	MessageBillingHardLimit  = "Billing hard limit has been reached"
	MessageModerationBlocked = "Your request was rejected by the safety system. If you believe this is an error, " +
		"contact us at help.openai.com and include the request ID req_5b0f3e1a9c2d4e6f8a7b6c5d4e3f2a1b."
	MessageContentPolicyViolation = "Your request was rejected as a result of our safety system. " +
		"Your prompt may contain text that is not allowed by our safety system."
	MessageServerError = "The server had an error while processing your request. Sorry about that!"
	MessageOverloaded  = "The engine is currently overloaded, please try again later."
)

// MaskedAPIKey is the partly masked key that InvalidAPIKey's message quotes,
// in the form OpenAI uses. Tests of secret redaction look for it.
const MaskedAPIKey = "sk-abc12*********************************************wxyz"

// DefaultRateLimitRequests is the x-ratelimit-limit-requests value that
// RateLimited sends: 5 images per minute, OpenAI's usage tier 1 for GPT
// Image models.
const DefaultRateLimitRequests = 5

// RateLimited returns a 429 rate_limit_exceeded response of type "requests",
// with the headers OpenAI sends: retry-after (whole seconds, rounded up),
// retry-after-ms, and x-ratelimit-limit-requests,
// x-ratelimit-remaining-requests (0) and x-ratelimit-reset-requests. A
// retryAfter of zero or less sends neither retry-after header nor
// x-ratelimit-reset-requests, as a 429 that does not say when to retry.
func RateLimited(retryAfter time.Duration) Response {
	h := http.Header{}
	h.Set("X-Ratelimit-Limit-Requests", strconv.Itoa(DefaultRateLimitRequests))
	h.Set("X-Ratelimit-Remaining-Requests", "0")
	wait := "later"
	if retryAfter > 0 {
		setRetryAfter(h, retryAfter)
		h.Set("X-Ratelimit-Reset-Requests", formatReset(retryAfter))
		wait = "in " + formatReset(retryAfter)
	}
	msg := fmt.Sprintf("Rate limit reached for gpt-image-1 in organization org-testkit on images per min (IPM): "+
		"Limit %d, Used %d, Requested 1. Please try again %s. "+
		"Visit https://platform.openai.com/account/rate-limits to learn more.",
		DefaultRateLimitRequests, DefaultRateLimitRequests, wait)
	return errorResponse(http.StatusTooManyRequests, h, TypeRequests, "", CodeRateLimitExceeded, msg)
}

// InsufficientQuota returns the 429 that OpenAI sends when the account is
// out of credit: type and code insufficient_quota. Waiting does not help.
func InsufficientQuota() Response {
	return errorResponse(http.StatusTooManyRequests, nil, TypeInsufficientQuota, "", CodeInsufficientQuota, MessageInsufficientQuota)
}

// BillingHardLimit returns a 400 billing_hard_limit_reached response, sent when
// the organisation's monthly spending limit is used up.
func BillingHardLimit() Response {
	return errorResponse(http.StatusBadRequest, nil, TypeInvalidRequest, "", CodeBillingHardLimitReached, MessageBillingHardLimit)
}

// OrganizationNotVerified returns the 403 that OpenAI sends when the
// organisation has not completed verification for model. As OpenAI does, the
// body has a null code and names the model and the verification page.
func OrganizationNotVerified(model string) Response {
	msg := "Your organization must be verified to use the model `" + model + "`. " +
		"Please go to: https://platform.openai.com/settings/organization/general and click on Verify Organization. " +
		"If you just verified, it can take up to 15 minutes for access to propagate."
	return errorResponse(http.StatusForbidden, nil, TypeInvalidRequest, "", "", msg)
}

// InvalidAPIKey returns a 401 invalid_api_key response whose message quotes
// MaskedAPIKey, the way OpenAI quotes part of a rejected key.
func InvalidAPIKey() Response {
	return errorResponse(http.StatusUnauthorized, nil, TypeInvalidRequest, "", CodeInvalidAPIKey, invalidKeyMessage(MaskedAPIKey))
}

func invalidKeyMessage(masked string) string {
	return "Incorrect API key provided: " + masked +
		". You can find your API key at https://platform.openai.com/account/api-keys."
}

// ModelNotFound returns a 404 model_not_found response for model.
func ModelNotFound(model string) Response {
	msg := "The model `" + model + "` does not exist or you do not have access to it."
	return errorResponse(http.StatusNotFound, nil, TypeInvalidRequest, "", CodeModelNotFound, msg)
}

// ModerationBlocked returns the 400 that GPT Image models send when the
// safety system rejects a prompt or image: type image_generation_user_error,
// code moderation_blocked.
func ModerationBlocked() Response {
	return errorResponse(http.StatusBadRequest, nil, TypeImageGenerationErr, "", CodeModerationBlocked, MessageModerationBlocked)
}

// ContentPolicyViolation returns the 400 content_policy_violation response that
// DALL·E models send for a rejected prompt.
func ContentPolicyViolation() Response {
	return errorResponse(http.StatusBadRequest, nil, TypeInvalidRequest, "", CodeContentPolicyViolation, MessageContentPolicyViolation)
}

// InvalidParameter returns a 400 invalid_request_error response about param,
// with code such as CodeUnknownParameter or CodeInvalidValue. The message
// follows OpenAI's wording for the code.
func InvalidParameter(param, code string) Response {
	var msg string
	switch code {
	case CodeUnknownParameter:
		msg = "Unknown parameter: '" + param + "'."
	case CodeMissingRequiredParam:
		msg = "Missing required parameter: '" + param + "'."
	default:
		msg = "Invalid value for '" + param + "'."
	}
	return errorResponse(http.StatusBadRequest, nil, TypeInvalidRequest, param, code, msg)
}

// ServerError returns a server_error response with the given status, usually
// 500, 502 or 503. A status of zero means 500.
func ServerError(status int) Response {
	if status == 0 {
		status = http.StatusInternalServerError
	}
	return errorResponse(status, nil, TypeServerError, "", "", MessageServerError)
}

// Overloaded returns the 503 server_error response that OpenAI sends when the
// model is overloaded.
func Overloaded() Response {
	return errorResponse(http.StatusServiceUnavailable, nil, TypeServerError, "", "", MessageOverloaded)
}

// HTMLProxyError returns an HTML error page with content-type text/html, as
// a reverse proxy or load balancer in front of the service sends it. The
// body is not OpenAI's JSON, so clients must cope without Type or Code. A
// status of zero means 502.
func HTMLProxyError(status int) Response {
	if status == 0 {
		status = http.StatusBadGateway
	}
	title := strconv.Itoa(status) + " " + http.StatusText(status)
	h := http.Header{}
	h.Set("Content-Type", "text/html")
	body := "<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" + title +
		"</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
	return Response{Status: status, Header: h, Body: body}
}

// Timeout returns a response that holds the request for d and then sends a
// 504 Gateway Timeout HTML page, as a proxy that gives up on a slow upstream
// does. A client whose own timeout is shorter than d gets a timeout error instead.
func Timeout(d time.Duration) Response {
	r := HTMLProxyError(http.StatusGatewayTimeout)
	r.Delay = d
	return r
}

// Slow returns a response that waits d and then responds normally.
func Slow(d time.Duration) Response {
	return Response{Delay: d}
}

// DropConnection returns a response that reads the request and closes the
// connection without responding, so the client cannot know whether the
// request was processed.
func DropConnection() Response {
	return Response{Drop: true}
}

// EmptyDataBody is the body that EmptyData sends.
const EmptyDataBody = `{"created":1767225600,"data":[],"background":"opaque","output_format":"png","quality":"medium","size":"1024x1024"}`

// EmptyData returns a 200 response whose data array is empty: a success
// without an image, which a provider must report as an error.
func EmptyData() Response {
	return Response{Status: http.StatusOK, Body: EmptyDataBody}
}

// BadBase64Body is the body that BadBase64 sends.
const BadBase64Body = `{"created":1767225600,"data":[{"b64_json":"iVBORw0KGgo!!not*base64!!"}],"background":"opaque","output_format":"png","quality":"medium","size":"1024x1024"}`

// BadBase64 returns a 200 response whose b64_json is not valid base64.
func BadBase64() Response {
	return Response{Status: http.StatusOK, Body: BadBase64Body}
}

func errorResponse(status int, h http.Header, typ, param, code, msg string) Response {
	return Response{
		Status: status,
		Header: h,
		Error:  &APIError{Message: msg, Type: typ, Param: param, Code: code},
	}
}

// setRetryAfter sets retry-after in whole seconds, rounded up so that a
// client never retries early, and retry-after-ms in milliseconds.
func setRetryAfter(h http.Header, d time.Duration) {
	seconds := int64(math.Ceil(d.Seconds()))
	h.Set("Retry-After", strconv.FormatInt(seconds, 10))
	h.Set("Retry-After-Ms", strconv.FormatInt(int64(math.Ceil(float64(d)/float64(time.Millisecond))), 10))
}

// formatReset formats a duration the way OpenAI's x-ratelimit-reset-* headers
// do, such as "1s", "6m0s" or "120ms": Go duration syntax, rounded up to the
// millisecond.
func formatReset(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return (ms * time.Millisecond).String()
}
