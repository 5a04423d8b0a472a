package imagegen

import (
	"bytes"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// diskTestClock is a settable clock for DiskCacheOptions.Now.
type diskTestClock struct {
	mu  sync.Mutex
	now time.Time
}

func newDiskTestClock() *diskTestClock {
	return &diskTestClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *diskTestClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *diskTestClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestDiskCache(t *testing.T, dir string, opts DiskCacheOptions) *DiskCache {
	t.Helper()
	c, err := NewDiskCache(dir, opts)
	require.NoError(t, err)
	return c
}

func diskTestPath(dir, key string) string {
	name := diskCacheFileName(key)
	return filepath.Join(dir, name[:2], name)
}

func TestDiskCacheGetSet(t *testing.T) {
	dir := t.TempDir()
	c := newTestDiskCache(t, dir, DiskCacheOptions{})
	testCacheGetSet(t, c)

	assert.Equal(t, int64(2*diskCacheHeaderSize+len("second")), c.totalBytes)
}

func TestDiskCacheUnsafeKeysStayInside(t *testing.T) {
	dir := t.TempDir()
	c := newTestDiskCache(t, dir, DiskCacheOptions{})
	for _, key := range []string{"../../escape", "/etc/passwd", "a/b\\c", "", strings.Repeat("k", 5000)} {
		require.NoError(t, c.Set(t.Context(), key, []byte("v"), 0), "key %q", key)
		got, err := c.Get(t.Context(), key)
		require.NoError(t, err, "key %q", key)
		assert.Equal(t, []byte("v"), got)
		assert.FileExists(t, diskTestPath(dir, key))
	}
	parent, err := os.ReadDir(filepath.Dir(dir))
	require.NoError(t, err)
	assert.Len(t, parent, 1, "files outside the cache directory")
}

func TestDiskCacheTTL(t *testing.T) {
	dir := t.TempDir()
	clock := newDiskTestClock()
	c := newTestDiskCache(t, dir, DiskCacheOptions{DefaultTTL: 10 * time.Minute, Now: clock.Now})
	ctx := t.Context()

	require.NoError(t, c.Set(ctx, "explicit", []byte("a"), time.Minute))
	require.NoError(t, c.Set(ctx, "default", []byte("b"), 0))

	clock.Advance(59 * time.Second)
	_, err := c.Get(ctx, "explicit")
	assert.NoError(t, err, "explicit ttl before expiry")

	clock.Advance(time.Second)
	_, err = c.Get(ctx, "explicit")
	assert.ErrorIs(t, err, ErrCacheMiss, "explicit ttl at expiry")
	assert.NoFileExists(t, diskTestPath(dir, "explicit"), "expired file removed")

	_, err = c.Get(ctx, "default")
	assert.NoError(t, err, "default ttl before expiry")
	clock.Advance(9 * time.Minute)
	_, err = c.Get(ctx, "default")
	assert.ErrorIs(t, err, ErrCacheMiss, "default ttl after expiry")
	assert.Zero(t, c.totalBytes)
}

func TestDiskCacheNoExpiry(t *testing.T) {
	clock := newDiskTestClock()
	c := newTestDiskCache(t, t.TempDir(), DiskCacheOptions{Now: clock.Now})
	require.NoError(t, c.Set(t.Context(), "k", []byte("v"), 0))
	clock.Advance(100 * 365 * 24 * time.Hour)
	got, err := c.Get(t.Context(), "k")
	require.NoError(t, err)
	assert.Equal(t, []byte("v"), got)
}

func TestDiskCacheRestart(t *testing.T) {
	dir := t.TempDir()
	clock := newDiskTestClock()
	first := newTestDiskCache(t, dir, DiskCacheOptions{Now: clock.Now})
	require.NoError(t, first.Set(t.Context(), "kept", []byte("image bytes"), 0))
	require.NoError(t, first.Set(t.Context(), "short", []byte("x"), time.Minute))

	clock.Advance(2 * time.Minute)
	second := newTestDiskCache(t, dir, DiskCacheOptions{Now: clock.Now})
	got, err := second.Get(t.Context(), "kept")
	require.NoError(t, err)
	assert.Equal(t, []byte("image bytes"), got)

	assert.NoFileExists(t, diskTestPath(dir, "short"), "expired file removed on open")
	assert.Len(t, second.entries, 1)
	assert.Equal(t, int64(diskCacheHeaderSize+len("image bytes")), second.totalBytes)
}

func TestDiskCacheSharedDirectory(t *testing.T) {
	dir := t.TempDir()
	a := newTestDiskCache(t, dir, DiskCacheOptions{})
	b := newTestDiskCache(t, dir, DiskCacheOptions{})

	require.NoError(t, a.Set(t.Context(), "k", []byte("from a"), 0))
	got, err := b.Get(t.Context(), "k")
	require.NoError(t, err, "b reads a file that a wrote after b opened")
	assert.Equal(t, []byte("from a"), got)
	assert.Equal(t, int64(diskCacheHeaderSize+len("from a")), b.totalBytes)
}

func TestDiskCacheCorruptFile(t *testing.T) {
	value := []byte("some image bytes")
	tests := []struct {
		name   string
		damage func(data []byte) []byte
	}{
		{"flipped value byte", func(d []byte) []byte { d[len(d)-1] ^= 0x01; return d }},
		{"flipped expiry byte", func(d []byte) []byte { d[10] ^= 0x01; return d }},
		{"truncated value", func(d []byte) []byte { return d[:len(d)-3] }},
		{"truncated header", func(d []byte) []byte { return d[:10] }},
		{"empty", func(d []byte) []byte { return nil }},
		{"appended byte", func(d []byte) []byte { return append(d, 0) }},
		{"wrong magic", func(d []byte) []byte { copy(d, "XXXX"); return d }},
		{"unknown version", func(d []byte) []byte { d[4] = 2; return d }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			c := newTestDiskCache(t, dir, DiskCacheOptions{})
			require.NoError(t, c.Set(t.Context(), "k", value, 0))
			path := diskTestPath(dir, "k")
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path, tt.damage(data), 0o600))

			_, err = c.Get(t.Context(), "k")
			assert.ErrorIs(t, err, ErrCacheMiss)
			assert.NoFileExists(t, path, "corrupt file removed")
			assert.Empty(t, c.entries)
			assert.Zero(t, c.totalBytes)
		})
	}

	t.Run("found on open", func(t *testing.T) {
		dir := t.TempDir()
		c := newTestDiskCache(t, dir, DiskCacheOptions{})
		require.NoError(t, c.Set(t.Context(), "good", value, 0))
		require.NoError(t, c.Set(t.Context(), "bad", value, 0))
		bad := diskTestPath(dir, "bad")
		data, err := os.ReadFile(bad)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(bad, data[:len(data)-1], 0o600))

		reopened := newTestDiskCache(t, dir, DiskCacheOptions{})
		assert.NoFileExists(t, bad, "truncated file removed on open")
		assert.Len(t, reopened.entries, 1)
		_, err = reopened.Get(t.Context(), "good")
		assert.NoError(t, err)
	})
}

func TestDiskCachePermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	c := newTestDiskCache(t, dir, DiskCacheOptions{})
	require.NoError(t, c.Set(t.Context(), "k", []byte("v"), 0))

	path := diskTestPath(dir, "k")
	for _, tt := range []struct {
		path string
		mode fs.FileMode
	}{
		{dir, 0o700 | fs.ModeDir},
		{filepath.Dir(path), 0o700 | fs.ModeDir},
		{path, 0o600},
	} {
		info, err := os.Stat(tt.path)
		require.NoError(t, err)
		assert.Equal(t, tt.mode, info.Mode(), "mode of %s", tt.path)
	}
}

func TestDiskCacheEvictsLeastRecentlyUsed(t *testing.T) {
	dir := t.TempDir()
	clock := newDiskTestClock()
	value := bytes.Repeat([]byte{'v'}, 100)
	fileSize := int64(diskCacheHeaderSize + len(value))
	c := newTestDiskCache(t, dir, DiskCacheOptions{MaxBytes: 3 * fileSize, Now: clock.Now})
	ctx := t.Context()

	for _, key := range []string{"a", "b", "c"} {
		require.NoError(t, c.Set(ctx, key, value, 0))
		clock.Advance(time.Second)
	}
	_, err := c.Get(ctx, "a") // a is now more recent than b and c
	require.NoError(t, err)
	clock.Advance(time.Second)

	require.NoError(t, c.Set(ctx, "d", value, 0))
	assert.NoFileExists(t, diskTestPath(dir, "b"), "least recently used evicted")
	for _, key := range []string{"a", "c", "d"} {
		assert.FileExists(t, diskTestPath(dir, key))
	}
	assert.Equal(t, 3*fileSize, c.totalBytes)

	// The order survives a restart through the files' modification times:
	// c is now the least recently used.
	reopened := newTestDiskCache(t, dir, DiskCacheOptions{MaxBytes: 3 * fileSize, Now: clock.Now})
	clock.Advance(time.Second)
	require.NoError(t, reopened.Set(ctx, "e", value, 0))
	assert.NoFileExists(t, diskTestPath(dir, "c"), "least recently used evicted after restart")
	for _, key := range []string{"a", "d", "e"} {
		assert.FileExists(t, diskTestPath(dir, key))
	}

	// Opening with a smaller bound evicts down to it, oldest first.
	smaller := newTestDiskCache(t, dir, DiskCacheOptions{MaxBytes: fileSize, Now: clock.Now})
	assert.Equal(t, fileSize, smaller.totalBytes)
	assert.FileExists(t, diskTestPath(dir, "e"))
	assert.NoFileExists(t, diskTestPath(dir, "a"))
	assert.NoFileExists(t, diskTestPath(dir, "d"))
}

func TestDiskCacheEntryTooLarge(t *testing.T) {
	dir := t.TempDir()
	c := newTestDiskCache(t, dir, DiskCacheOptions{MaxBytes: 100})
	err := c.Set(t.Context(), "k", make([]byte, 100-diskCacheHeaderSize+1), 0)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exceeds the disk cache's MaxBytes of 100")
	assert.NoFileExists(t, diskTestPath(dir, "k"))

	require.NoError(t, c.Set(t.Context(), "k", make([]byte, 100-diskCacheHeaderSize), 0), "an entry of exactly MaxBytes fits")
}

func TestDiskCacheStaleTempFiles(t *testing.T) {
	dir := t.TempDir()
	clock := newDiskTestClock()
	shard := filepath.Join(dir, "ab")
	require.NoError(t, os.MkdirAll(shard, 0o700))
	stale := filepath.Join(shard, diskCacheTempPrefix+"stale")
	fresh := filepath.Join(shard, diskCacheTempPrefix+"fresh")
	foreign := filepath.Join(shard, "notes.txt")
	for _, p := range []string{stale, fresh, foreign} {
		require.NoError(t, os.WriteFile(p, []byte("partial"), 0o600))
	}
	require.NoError(t, os.Chtimes(stale, clock.Now().Add(-2*time.Hour), clock.Now().Add(-2*time.Hour)))
	require.NoError(t, os.Chtimes(fresh, clock.Now().Add(-time.Minute), clock.Now().Add(-time.Minute)))

	c := newTestDiskCache(t, dir, DiskCacheOptions{Now: clock.Now})
	assert.NoFileExists(t, stale, "abandoned temporary file removed")
	assert.FileExists(t, fresh, "recent temporary file may be a write in progress")
	assert.FileExists(t, foreign, "files the cache does not name are left alone")
	assert.Empty(t, c.entries)
}

func TestDiskCacheIOErrors(t *testing.T) {
	dir := t.TempDir()
	c := newTestDiskCache(t, dir, DiskCacheOptions{})
	ctx := t.Context()

	// A regular file where the key's subdirectory belongs makes writes fail.
	blocked := "blocked"
	require.NoError(t, os.WriteFile(filepath.Dir(diskTestPath(dir, blocked)), nil, 0o600))
	err := c.Set(ctx, blocked, []byte("v"), 0)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "imagegen: create disk cache directory")

	// A directory where the key's file belongs makes reads fail with an
	// error that is not a miss.
	unreadable := "unreadable"
	require.NoError(t, os.MkdirAll(diskTestPath(dir, unreadable), 0o700))
	_, err = c.Get(ctx, unreadable)
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrCacheMiss)
	assert.Contains(t, err.Error(), "imagegen: read disk cache file")

	// So does one where a write would rename its file.
	err = c.Set(ctx, unreadable, []byte("v"), 0)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "imagegen: store disk cache file")
	leftovers, err := filepath.Glob(filepath.Join(filepath.Dir(diskTestPath(dir, unreadable)), diskCacheTempPrefix+"*"))
	require.NoError(t, err)
	assert.Empty(t, leftovers, "temporary file removed after a failed rename")

	// A file removed behind the cache's back is a miss.
	require.NoError(t, c.Set(ctx, "gone", []byte("v"), 0))
	require.NoError(t, os.Remove(diskTestPath(dir, "gone")))
	_, err = c.Get(ctx, "gone")
	assert.ErrorIs(t, err, ErrCacheMiss)
	assert.NotContains(t, c.entries, diskCacheFileName("gone"))
}

func TestDiskCacheInvalidInput(t *testing.T) {
	_, err := NewDiskCache("", DiskCacheOptions{})
	assert.ErrorContains(t, err, "directory is empty")
	_, err = NewDiskCache(t.TempDir(), DiskCacheOptions{MaxBytes: -1})
	assert.ErrorContains(t, err, "MaxBytes -1")
	_, err = NewDiskCache(t.TempDir(), DiskCacheOptions{DefaultTTL: -time.Second})
	assert.ErrorContains(t, err, "DefaultTTL -1s")

	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err = NewDiskCache(file, DiskCacheOptions{})
	assert.ErrorContains(t, err, "imagegen: create disk cache directory")

	c := newTestDiskCache(t, t.TempDir(), DiskCacheOptions{})
	assert.ErrorContains(t, c.Set(t.Context(), "k", []byte("v"), -time.Second), "invalid cache ttl -1s")
}

func TestDiskCacheConcurrentUse(t *testing.T) {
	dir := t.TempDir()
	value := bytes.Repeat([]byte{'v'}, 200)
	maxBytes := int64(10 * (diskCacheHeaderSize + len(value)))
	c := newTestDiskCache(t, dir, DiskCacheOptions{MaxBytes: maxBytes})

	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 100 {
				key := fmt.Sprintf("k%d", (i*5+w)%25)
				assert.NoError(t, c.Set(t.Context(), key, value, 0))
				got, err := c.Get(t.Context(), key)
				if err == nil {
					assert.Equal(t, value, got)
				} else {
					assert.ErrorIs(t, err, ErrCacheMiss)
				}
			}
		})
	}
	wg.Wait()

	// The index matches the files on disk and fits the bound.
	var onDisk int64
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		if d.Type().IsRegular() {
			assert.False(t, strings.HasPrefix(d.Name(), diskCacheTempPrefix), "temporary file left: %s", path)
			info, err := d.Info()
			require.NoError(t, err)
			onDisk += info.Size()
			files++
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, c.totalBytes, onDisk)
	assert.Equal(t, len(c.entries), files)
	assert.LessOrEqual(t, onDisk, maxBytes)
}

func TestDiskCacheLogsCorruptFile(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := newTestDiskCache(t, dir, DiskCacheOptions{Logger: logger, MaxBytes: 2 * (diskCacheHeaderSize + 1)})

	require.NoError(t, c.Set(t.Context(), "k", []byte("v"), 0))
	require.NoError(t, os.WriteFile(diskTestPath(dir, "k"), []byte("garbage"), 0o600))
	_, err := c.Get(t.Context(), "k")
	require.ErrorIs(t, err, ErrCacheMiss)
	assert.Contains(t, logs.String(), "level=WARN msg=\"imagegen: disk cache: removed corrupt file\"")
	assert.Contains(t, logs.String(), diskCacheFileName("k"))

	for _, key := range []string{"a", "b", "c"} {
		require.NoError(t, c.Set(t.Context(), key, []byte("v"), 0))
	}
	assert.Contains(t, logs.String(), "level=DEBUG msg=\"imagegen: disk cache: removed file\"")
	assert.Contains(t, logs.String(), "evicted")
}

func TestDiskCacheVeryLongTTL(t *testing.T) {
	c := newTestDiskCache(t, t.TempDir(), DiskCacheOptions{Now: newDiskTestClock().Now})

	require.NoError(t, c.Set(t.Context(), "forever", []byte("v"), time.Duration(math.MaxInt64)))
	require.NoError(t, c.Set(t.Context(), "centuries", []byte("w"), 250*365*24*time.Hour))

	got, err := c.Get(t.Context(), "forever")
	require.NoError(t, err, "an expiry past 2262 means no expiry, not an expired entry")
	assert.Equal(t, "v", string(got))
	got, err = c.Get(t.Context(), "centuries")
	require.NoError(t, err)
	assert.Equal(t, "w", string(got))
}
