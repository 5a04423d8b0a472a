// Package imagegen is a client for AI image generation services that keeps
// each service inside its rate limits, retries only what can succeed, falls
// back across providers and models, and knows what every image cost.
//
// A [Client] wraps one or more providers (see package provider and its
// subpackages) and exposes [Client.Generate] and [Client.Edit]:
//
//	p, err := openai.New(openai.Options{APIKey: key})
//	...
//	c, err := imagegen.New(imagegen.WithProvider(p))
//	...
//	res, err := c.Generate(ctx, "a lighthouse at dawn", imagegen.GenerateOptions{Size: "1536x1024"})
//
// # Providers
//
// A provider.Provider makes one call to one service and nothing more.
// Package provider/openai speaks OpenAI's Images API and any compatible
// gateway. Custom providers implement provider.Provider in their own
// packages; package imagegentest has a fake provider and a local
// OpenAI-compatible server for tests.
//
// # Retries
//
// Every failure is classified (see [Class]). Rate limits, server errors,
// timeouts and network failures are retried on the same provider with
// exponential backoff and jitter; a wait the service asks for with
// Retry-After replaces the computed delay, and a wait longer than
// [RetryPolicy.MaxWait] moves the call to the next provider instead of
// sleeping. Quota, entitlement, authentication and not-found failures move
// to the next provider at once; invalid requests and content rejections stop
// the call, because they would fail everywhere. A client-wide retry budget
// keeps an outage from multiplying traffic. See [RetryPolicy].
//
// # Errors
//
// Failed attempts are *[Error] values with the provider, model, HTTP status,
// class, code, message, request id and requested wait; test their class with
// errors.Is and a sentinel such as [ErrRateLimited]. A call whose attempts
// all failed returns an *[AttemptsError] that explains the last failure and
// keeps every attempt's error reachable. Bad input returns a
// *[ValidationError] before any network call. No error text or log line
// contains an API key.
//
// # Concurrency
//
// A Client is safe for concurrent use. It never calls hooks while holding a
// lock, and every wait it makes (rate limits, backoff, HTTP) ends when the
// caller's context does.
package imagegen
