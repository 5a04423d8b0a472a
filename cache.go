package imagegen

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/imagegen-go/imagegen/provider"
)

// Cache stores encoded cache entries: the images of earlier successful calls,
// as bytes, under the keys that CacheKey and CacheKeyEdit derive.
//
// Implementations must be safe for concurrent use. They should return errors
// instead of panicking on I/O failures. The Client treats any error from a
// Cache as a miss (for Get) or a skipped write (for Set) and never fails a
// call because of it.
//
// NewMemoryCache, NewDiskCache and the rediscache package provide
// implementations.
type Cache interface {
	// Get returns the value stored under key, or an error that matches
	// ErrCacheMiss when there is none, it expired or it was corrupt. Other
	// errors report a failing store. The caller must not modify the returned
	// slice: an implementation may return its own storage.
	Get(ctx context.Context, key string) ([]byte, error)

	// Set stores value under key for ttl. A ttl of zero means the cache's
	// default TTL, which itself may mean no expiry. A negative ttl is an
	// error. The cache may keep value without copying it, so the caller must
	// not modify value after the call.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
}

// ErrCacheMiss is returned, possibly wrapped, by Cache.Get when the key has no
// usable value. Test for it with errors.Is.
var ErrCacheMiss = errors.New("imagegen: cache miss")

// CachePolicy chooses how one call uses the Client's cache. The zero value is
// CacheUse.
type CachePolicy int

// The cache policies.
const (
	// CacheUse reads the cache and stores new results in it.
	CacheUse CachePolicy = iota
	// CacheBypass neither reads nor writes the cache.
	CacheBypass
	// CacheRefresh skips the read, calls the provider and stores the result,
	// which replaces any cached one.
	CacheRefresh
	// CacheReadOnly reads the cache but never stores a result.
	CacheReadOnly
)

// String returns the policy's name, such as "use" or "read_only".
func (p CachePolicy) String() string {
	switch p {
	case CacheUse:
		return "use"
	case CacheBypass:
		return "bypass"
	case CacheRefresh:
		return "refresh"
	case CacheReadOnly:
		return "read_only"
	default:
		return "cache_policy(" + strconv.Itoa(int(p)) + ")"
	}
}

// readsCache reports whether a call under policy p may return a cached
// result. Unknown policies neither read nor write.
func (p CachePolicy) readsCache() bool {
	return p == CacheUse || p == CacheReadOnly
}

// writesCache reports whether a call under policy p stores its result.
func (p CachePolicy) writesCache() bool {
	return p == CacheUse || p == CacheRefresh
}

// cacheKeyVersion starts every key's input. Change it whenever the key's
// fields or their encoding change, so that old entries are no longer found.
const cacheKeyVersion = "imagegen/cache-key/v1"

// Defaults that the key substitutes for omitted values, so that an omitted
// field and its explicit default give the same key. The output format and
// compression defaults are those documented for OpenAI's image API in
// openai-go v3 (ImageGenerateParams: "defaults to 100", png output).
const (
	cacheKeyDefaultAuto        = "auto"
	cacheKeyDefaultFormat      = "png"
	cacheKeyDefaultCompression = 100
)

// CacheKey returns the cache key of a generate request: 64 lowercase hex
// digits of a SHA-256 over the namespace and every request field that changes
// the output. It never contains any field in clear.
//
// namespace scopes the key, such as a tenant id: requests in different
// namespaces never share a key. Empty is a namespace like any other.
//
// The key covers the prompt after normalization, Model, N, Size, Quality,
// Background, OutputFormat, OutputCompression, Moderation, Style and Extra.
// The prompt is trimmed and every run of white space inside it becomes one
// space, where white space is what unicode.IsSpace reports (this includes
// tabs, line breaks, no-break and ideographic spaces). Case is kept, so
// "OPEN" and "open" give different keys. The prompt is not Unicode-normalized:
// composed and decomposed forms of the same text (NFC and NFD) give different
// keys.
//
// Omitted values and their defaults give the same key. N 0 equals 1. Size,
// Quality, Background and Moderation "" equal "auto". OutputFormat "" equals
// "png", and a nil OutputCompression equals 100. Other values are compared
// exactly, so "PNG" and "png" differ. Extra is encoded as JSON with sorted map keys,
// and a nil Extra equals an empty one.
//
// SafetyIdentifier is left out: it identifies the end user for the service's
// abuse detection and does not change the image, so end users in one
// namespace share cached images. Use one namespace per user to keep them
// apart.
//
// A nil req gives the key of a zero Request.
func CacheKey(namespace string, req *provider.Request) string {
	if req == nil {
		req = &provider.Request{}
	}
	var stack [512]byte
	b := appendKeyString(stack[:0], cacheKeyVersion)
	b = appendKeyString(b, namespace)
	b = appendKeyString(b, "generate")
	b = appendKeyRequest(b, req)
	return cacheKeySum(b)
}

// CacheKeyEdit returns the cache key of an edit request. It covers everything
// that CacheKey covers, InputFidelity (compared exactly, "" being its own
// value) and the SHA-256 and media type of every input image and of the mask,
// in order. File names are left out because they do not change the output.
// An edit and a generate request never share a key.
//
// A nil req gives the key of a zero EditRequest.
func CacheKeyEdit(namespace string, req *provider.EditRequest) string {
	if req == nil {
		req = &provider.EditRequest{}
	}
	var stack [512]byte
	b := appendKeyString(stack[:0], cacheKeyVersion)
	b = appendKeyString(b, namespace)
	b = appendKeyString(b, "edit")
	b = appendKeyRequest(b, &req.Request)
	b = appendKeyString(b, req.InputFidelity)
	b = appendKeyInt(b, int64(len(req.Images)))
	for i := range req.Images {
		b = appendKeyFile(b, &req.Images[i])
	}
	if req.Mask == nil {
		b = appendKeyInt(b, 0)
	} else {
		b = appendKeyInt(b, 1)
		b = appendKeyFile(b, req.Mask)
	}
	return cacheKeySum(b)
}

// The appendKey functions append one field of a key's input. Every field is
// preceded by its length as 8 big-endian bytes, so no two different field
// lists give the same bytes. They return the extended slice, like append, so
// that a key's input can stay in a stack buffer.

func appendKeyString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

func appendKeyBytes(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(v)))
	return append(b, v...)
}

func appendKeyInt(b []byte, v int64) []byte {
	b = binary.BigEndian.AppendUint64(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

// appendKeyPrompt appends the normalized prompt and patches its length in
// afterwards, which spares a copy of the prompt.
func appendKeyPrompt(b []byte, prompt string) []byte {
	start := len(b)
	b = binary.BigEndian.AppendUint64(b, 0)
	b = appendNormalizedPrompt(b, prompt)
	binary.BigEndian.PutUint64(b[start:], uint64(len(b)-start-8))
	return b
}

func appendKeyRequest(b []byte, req *provider.Request) []byte {
	b = appendKeyPrompt(b, req.Prompt)
	b = appendKeyString(b, req.Model)

	n := req.N
	if n == 0 {
		n = 1
	}
	b = appendKeyInt(b, int64(n))

	// NOTE: "" counts as "auto" for every model. For DALL·E models, whose
	// defaults are 1024x1024 and "standard", an omitted and an explicit
	// default give two keys: an extra miss, never a wrong image.
	b = appendKeyString(b, cacheKeyOrDefault(req.Size, cacheKeyDefaultAuto))
	b = appendKeyString(b, cacheKeyOrDefault(req.Quality, cacheKeyDefaultAuto))
	b = appendKeyString(b, cacheKeyOrDefault(req.Background, cacheKeyDefaultAuto))
	b = appendKeyString(b, cacheKeyOrDefault(req.OutputFormat, cacheKeyDefaultFormat))

	compression := int64(cacheKeyDefaultCompression)
	if req.OutputCompression != nil {
		compression = int64(*req.OutputCompression)
	}
	b = appendKeyInt(b, compression)

	b = appendKeyString(b, cacheKeyOrDefault(req.Moderation, cacheKeyDefaultAuto))
	b = appendKeyString(b, req.Style)
	return appendKeyExtra(b, req.Extra)
}

// appendKeyExtra appends Extra as JSON. encoding/json writes map keys in
// sorted order at every level, so equal maps give equal bytes.
func appendKeyExtra(b []byte, extra map[string]any) []byte {
	if len(extra) == 0 {
		return appendKeyString(b, "")
	}
	encoded, err := json.Marshal(extra)
	if err != nil {
		// NOTE: a value that cannot be encoded as JSON (a channel, NaN) keys
		// on the error text, so such requests may share a key. Providers send
		// Extra as JSON, so these requests fail and their results never reach
		// the cache.
		return appendKeyString(b, "invalid extra: "+err.Error())
	}
	return appendKeyBytes(b, encoded)
}

func appendKeyFile(b []byte, f *provider.File) []byte {
	sum := sha256.Sum256(f.Data)
	b = appendKeyString(b, f.MediaType)
	return appendKeyBytes(b, sum[:])
}

func cacheKeySum(b []byte) string {
	sum := sha256.Sum256(b)
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

func cacheKeyOrDefault(value, def string) string {
	if value == "" {
		return def
	}
	return value
}

// appendNormalizedPrompt appends s to dst without leading and trailing white
// space and with every inner run of white space replaced by one ASCII space.
// Bytes that are not valid UTF-8 are copied unchanged, so different invalid
// prompts stay different.
func appendNormalizedPrompt(dst []byte, s string) []byte {
	pendingSpace := false
	wrote := false
	for i := 0; i < len(s); {
		c := s[i]
		width := 1
		isSpace := false
		if c < utf8.RuneSelf {
			isSpace = c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
		} else {
			var r rune
			r, width = utf8.DecodeRuneInString(s[i:])
			isSpace = unicode.IsSpace(r)
		}
		if isSpace {
			pendingSpace = true
			i += width
			continue
		}
		if pendingSpace && wrote {
			dst = append(dst, ' ')
		}
		pendingSpace = false
		wrote = true
		dst = append(dst, s[i:i+width]...)
		i += width
	}
	return dst
}
