// Package imagegentest provides test doubles for code that generates images
// with imagegen or with OpenAI's image API directly, in the spirit of
// net/http/httptest.
//
// It offers two tools. Server is a real HTTP server on 127.0.0.1 that speaks
// OpenAI's wire format, for tests that go through an HTTP client, such as
// openai-go or imagegen's OpenAI provider. FakeProvider implements
// provider.Provider and provider.Editor in memory, for fast unit tests and
// benchmarks of code that takes a Provider, such as imagegen.Client.
//
// # Server
//
// NewServer starts a server; point the client at its URL, which ends in /v1:
//
//	srv := imagegentest.NewServer()
//	defer srv.Close()
//	client := openai.NewClient(
//		option.WithBaseURL(srv.URL),
//		option.WithAPIKey("test"),
//		option.WithMaxRetries(0),
//	)
//
// POST /v1/images/generations and POST /v1/images/edits validate their
// requests as OpenAI does and respond with real images: PNG by default, JPEG
// for output_format "jpeg", of the requested size (1024x1024 for "auto").
// The bytes depend only on the prompt, model, size, format and image index,
// so a test can compare them across runs. The standard library cannot
// encode WebP, so a request for "webp" gets a PNG and output_format "png".
// The usage block follows gpt-image-1's published token table; OutputTokens,
// TextTokens and ImageTokens compute the same figures for assertions.
//
// Enqueue scripts the next responses, in order, and SetHandler decides
// responses from the request. Ready-made responses reproduce each failure
// that OpenAI's image API is known to send, with its status, error type,
// code, parameter, message and headers. They are RateLimited,
// InsufficientQuota, BillingHardLimit, OrganizationNotVerified,
// InvalidAPIKey, ModelNotFound, ModerationBlocked, ContentPolicyViolation,
// InvalidParameter, ServerError, Overloaded, HTMLProxyError, Timeout, Slow,
// DropConnection, EmptyData and BadBase64.
// For example, one rate limit followed by a success:
//
//	srv.Enqueue(imagegentest.RateLimited(2 * time.Second))
//
// WithQuota enforces a requests-per-minute and images-per-minute limit with
// OpenAI's 429 response and x-ratelimit-* headers, and WithClock drives it from
// a test clock. Requests and Stats report what the server received and sent.
//
// A delay in a scripted response ends as soon as the client goes away or the
// server closes, so abandoned requests do not hold up Close. The server runs
// over real loopback sockets, which testing/synctest bubbles do not support:
// use FakeProvider in such tests.
//
// # FakeProvider
//
// NewFakeProvider returns a provider whose calls succeed with the same
// deterministic images as the server's, without any network:
//
//	fake := imagegentest.NewFakeProvider("primary")
//	fake.Enqueue(
//		imagegentest.FakeResultFrom(imagegentest.RateLimited(time.Second)),
//		imagegentest.FakeResult{Delay: 5 * time.Second},
//	)
//
// Enqueue scripts outcomes, SetFunc decides them per call, and FakeError and
// FakeResultFrom build the classified *imagegen.Error values that a real
// provider returns. Delays use timers and honour the context, so they run on
// the fake clock of a testing/synctest bubble. WithTinyImages and
// WithoutRecording keep the fake cheap in benchmarks.
package imagegentest
