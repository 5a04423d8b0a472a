package imagegen

import (
	"cmp"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultDiskCacheMaxBytes is the MaxBytes of a DiskCache whose options leave
// it zero: 1 GiB.
const DefaultDiskCacheMaxBytes = 1 << 30

// DiskCacheOptions configures NewDiskCache.
type DiskCacheOptions struct {
	// MaxBytes bounds the total size of the cache's files, headers included.
	// Zero means DefaultDiskCacheMaxBytes.
	MaxBytes int64

	// DefaultTTL is how long an entry stored with a ttl of zero lives. Zero
	// means such entries never expire and leave only when evicted.
	DefaultTTL time.Duration

	// Logger receives a warning for each corrupt file removed and each file
	// operation that failed without failing a call, and debug messages for
	// evictions. Nil means no logging.
	Logger *slog.Logger

	// Now returns the current time, for expiry and for the access times that
	// order eviction. Nil means time.Now. Tests set it to control time.
	Now func() time.Time
}

// DiskCache is a Cache in files under one directory, bounded by the total
// size of its files and by their TTL. When full it evicts the least recently
// used entries. It is safe for concurrent use.
//
// Each entry is one file named by the SHA-256 of its key, in a subdirectory
// named by the name's first two hex digits. Files are created with mode 0600
// and subdirectories with mode 0700; the directory itself gets 0700 when
// NewDiskCache creates it and keeps its mode otherwise. A file starts with a
// header holding a magic number, the expiry time, the value's length and a
// CRC-32C of header and value. A file that fails these checks is a miss and
// is removed.
//
// Writes go to a temporary file in the same subdirectory, which is then
// renamed over the entry, so a reader sees either the old or the new file
// whole. Files are not synced to disk: after a power failure a file may be
// empty or truncated, which the checks catch. Each hit sets the file's
// modification time to the current time, and NewDiskCache orders the
// entries it finds by that time, so the eviction order survives a restart.
//
// Several processes may share a directory. Each reads the files the others
// write, but it evicts only the files in its own index and keeps its own
// count of bytes and access order, so together they can exceed MaxBytes
// until they restart. A file that one process removes while another reads it is still
// read whole on Unix file systems.
type DiskCache struct {
	dir        string
	maxBytes   int64
	defaultTTL time.Duration
	logger     *slog.Logger
	now        func() time.Time

	mu         sync.Mutex
	entries    map[string]*diskCacheEntry // by file name
	lru        list.List                  // of *diskCacheEntry, most recently used first
	totalBytes int64
}

// diskCacheEntry is the index record of one file. Each write of a key creates
// a new record, so comparing pointers shows whether a file was replaced.
type diskCacheEntry struct {
	name string
	size int64
	elem *list.Element
}

// The file header is:
//
//	0  magic "IGDC"
//	4  version byte 1, then three zero bytes
//	8  expiry: Unix nanoseconds, int64 big-endian, 0 for none
//	16 value length: uint64 big-endian
//	24 CRC-32C (Castagnoli) of bytes 0 to 23 followed by the value
//	28 the value
const (
	diskCacheMagic      = "IGDC"
	diskCacheVersion    = 1
	diskCacheHeaderSize = 28

	// diskCacheTempPrefix starts the names of files being written.
	diskCacheTempPrefix = ".tmp-"

	// diskCacheStaleTempAge is how old a temporary file must be for
	// NewDiskCache to remove it. Younger ones may belong to a write in
	// progress in another process.
	diskCacheStaleTempAge = time.Hour
)

var diskCacheCRCTable = crc32.MakeTable(crc32.Castagnoli)

var errDiskCacheCorrupt = errors.New("imagegen: corrupt disk cache file")

// NewDiskCache opens the cache in dir, creating dir if needed, and indexes the
// files already there. It reads each file's header and removes corrupt and
// expired files and temporary files older than an hour. Then it evicts the
// least recently used files until the rest fit in MaxBytes. Files with names
// that the cache does not use are left alone.
//
// It returns an error if dir is empty, MaxBytes or DefaultTTL is negative, or
// dir cannot be created or listed.
func NewDiskCache(dir string, opts DiskCacheOptions) (*DiskCache, error) {
	if dir == "" {
		return nil, errors.New("imagegen: disk cache directory is empty: pass a directory path")
	}
	if opts.MaxBytes < 0 {
		return nil, fmt.Errorf("imagegen: invalid DiskCacheOptions.MaxBytes %d: want 0 (default) or more", opts.MaxBytes)
	}
	if opts.DefaultTTL < 0 {
		return nil, fmt.Errorf("imagegen: invalid DiskCacheOptions.DefaultTTL %v: want 0 (no expiry) or more", opts.DefaultTTL)
	}

	c := &DiskCache{
		dir:        dir,
		maxBytes:   cmp.Or(opts.MaxBytes, DefaultDiskCacheMaxBytes),
		defaultTTL: opts.DefaultTTL,
		logger:     opts.Logger,
		now:        opts.Now,
		entries:    make(map[string]*diskCacheEntry),
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("imagegen: create disk cache directory: %w", err)
	}
	if err := c.loadIndex(); err != nil {
		return nil, err
	}
	return c, nil
}

// loadIndex indexes the files under c.dir, oldest access first.
func (c *DiskCache) loadIndex() error {
	shards, err := os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("imagegen: list disk cache directory: %w", err)
	}

	type found struct {
		name  string
		size  int64
		mtime time.Time
	}
	var files []found
	now := c.now()
	for _, shard := range shards {
		if !shard.IsDir() || !isDiskCacheShardName(shard.Name()) {
			continue
		}
		shardDir := filepath.Join(c.dir, shard.Name())
		dirEntries, err := os.ReadDir(shardDir)
		if err != nil {
			c.logger.Warn("imagegen: disk cache: cannot list directory", "dir", shardDir, "error", err)
			continue
		}
		for _, de := range dirEntries {
			name := de.Name()
			path := filepath.Join(shardDir, name)
			if strings.HasPrefix(name, diskCacheTempPrefix) {
				c.removeStaleTemp(path, now)
				continue
			}
			if !de.Type().IsRegular() || !isDiskCacheFileName(name) || name[:2] != shard.Name() {
				continue
			}
			size, mtime, err := c.checkFileHeader(path, now)
			if err != nil {
				c.logRemoval(removeDiskCacheFile(path, err))
				continue
			}
			files = append(files, found{name: name, size: size, mtime: mtime})
		}
	}

	// Push from the oldest access to the newest, so that the newest ends up
	// at the front of the LRU list.
	slices.SortFunc(files, func(a, b found) int {
		return cmp.Or(a.mtime.Compare(b.mtime), strings.Compare(a.name, b.name))
	})
	c.mu.Lock()
	for _, f := range files {
		c.insertLocked(f.name, f.size)
	}
	evicted := c.evictLocked(nil)
	c.mu.Unlock()

	c.logRemovals(evicted)
	return nil
}

// checkFileHeader returns the size and modification time of the cache file
// at path, or an error if its header is invalid, its length does not match
// the header or it expired.
func (c *DiskCache) checkFileHeader(path string, now time.Time) (int64, time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, time.Time{}, err
	}
	defer f.Close()

	info, err := f.Stat()
	if err != nil {
		return 0, time.Time{}, err
	}
	var header [diskCacheHeaderSize]byte
	if _, err := io.ReadFull(f, header[:]); err != nil {
		return 0, time.Time{}, fmt.Errorf("%w: short header: %v", errDiskCacheCorrupt, err)
	}
	expiresAt, length, err := parseDiskCacheHeader(header[:])
	if err != nil {
		return 0, time.Time{}, err
	}
	if length != uint64(info.Size())-diskCacheHeaderSize {
		return 0, time.Time{}, fmt.Errorf("%w: file has %d bytes, header records %d", errDiskCacheCorrupt, info.Size(), length+diskCacheHeaderSize)
	}
	if diskCacheExpired(expiresAt, now) {
		return 0, time.Time{}, errDiskCacheExpired
	}
	return info.Size(), info.ModTime(), nil
}

var errDiskCacheExpired = errors.New("imagegen: disk cache entry expired")

func (c *DiskCache) removeStaleTemp(path string, now time.Time) {
	info, err := os.Lstat(path)
	if err != nil || now.Sub(info.ModTime()) < diskCacheStaleTempAge {
		return
	}
	c.logRemoval(removeDiskCacheFile(path, errors.New("abandoned temporary file")))
}

// diskCacheRemoval is the outcome of removing one file, logged by
// logRemoval once c.mu is released.
type diskCacheRemoval struct {
	path   string
	reason error // cause of the removal
	err    error // failure of the removal, or nil
}

// removeDiskCacheFile removes path. It does not log, so that callers holding c.mu can
// log after releasing it.
func removeDiskCacheFile(path string, reason error) diskCacheRemoval {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return diskCacheRemoval{path: path, reason: reason, err: err}
}

// logRemoval logs a failed removal or a removed corrupt file at Warn and
// other removals at Debug.
func (c *DiskCache) logRemoval(r diskCacheRemoval) {
	switch {
	case r.err != nil:
		c.logger.Warn("imagegen: disk cache: cannot remove file", "path", r.path, "reason", r.reason, "error", r.err)
	case errors.Is(r.reason, errDiskCacheCorrupt):
		c.logger.Warn("imagegen: disk cache: removed corrupt file", "path", r.path, "error", r.reason)
	default:
		c.logger.Debug("imagegen: disk cache: removed file", "path", r.path, "reason", r.reason)
	}
}

// Get returns the value stored under key, or an error that matches
// ErrCacheMiss when there is none, it expired or its file is corrupt.
// Expired and corrupt files are removed. Other errors report a file that
// exists but cannot be read. The returned slice is the caller's own.
func (c *DiskCache) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name := diskCacheFileName(key)
	path := c.filePath(name)

	c.mu.Lock()
	entry := c.entries[name]
	if entry != nil {
		c.lru.MoveToFront(entry.elem)
	}
	c.mu.Unlock()

	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		c.forget(name, entry)
		return nil, ErrCacheMiss
	}
	if err != nil {
		return nil, fmt.Errorf("imagegen: read disk cache file: %w", err)
	}

	now := c.now()
	value, expiresAt, err := parseDiskCacheFile(data)
	if err == nil && diskCacheExpired(expiresAt, now) {
		err = errDiskCacheExpired
	}
	if err != nil {
		c.discard(name, entry, err)
		return nil, ErrCacheMiss
	}

	if entry == nil {
		// Another process wrote the file, or this one evicted it from the
		// index while another process rewrote it.
		var evicted []diskCacheRemoval
		c.mu.Lock()
		if c.entries[name] == nil {
			c.insertLocked(name, int64(len(data)))
			evicted = c.evictLocked(c.entries[name])
		}
		c.mu.Unlock()
		c.logRemovals(evicted)
	}

	if err := os.Chtimes(path, now, now); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.logger.Warn("imagegen: disk cache: cannot record access time", "path", path, "error", err)
	}
	return value, nil
}

// Set stores value under key for ttl, replacing any earlier value. A ttl of
// zero means the cache's DefaultTTL. Set returns an error, and stores
// nothing, when ttl is negative, the file alone would be larger than
// MaxBytes, or writing the file fails. Set does not keep value.
func (c *DiskCache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ttl < 0 {
		return fmt.Errorf("imagegen: invalid cache ttl %v: want 0 (default) or more", ttl)
	}
	ttl = cmp.Or(ttl, c.defaultTTL)
	size := int64(diskCacheHeaderSize) + int64(len(value))
	if size > c.maxBytes {
		return fmt.Errorf("imagegen: cache file of %d bytes exceeds the disk cache's MaxBytes of %d; raise MaxBytes to cache it", size, c.maxBytes)
	}

	now := c.now()
	var expiresAt int64
	if ttl > 0 {
		// An expiry past what UnixNano can hold (the year 2262) is no expiry.
		if ttl < time.Duration(math.MaxInt64-now.UnixNano()) {
			expiresAt = now.Add(ttl).UnixNano()
		}
	}
	name := diskCacheFileName(key)
	path := c.filePath(name)
	tempPath, err := c.writeTemp(filepath.Dir(path), expiresAt, value, now)
	if err != nil {
		return err
	}

	c.mu.Lock()
	if err := os.Rename(tempPath, path); err != nil {
		c.mu.Unlock()
		_ = os.Remove(tempPath)
		return fmt.Errorf("imagegen: store disk cache file: %w", err)
	}
	c.insertLocked(name, size)
	evicted := c.evictLocked(c.entries[name])
	c.mu.Unlock()

	c.logRemovals(evicted)
	return nil
}

// writeTemp writes a complete cache file to a new temporary file in dir and
// returns its path. On error it removes the file.
func (c *DiskCache) writeTemp(dir string, expiresAt int64, value []byte, now time.Time) (path string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("imagegen: create disk cache directory: %w", err)
	}
	f, err := os.CreateTemp(dir, diskCacheTempPrefix+"*")
	if err != nil {
		return "", fmt.Errorf("imagegen: create disk cache file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()

	header := encodeDiskCacheHeader(expiresAt, value)
	if _, err := f.Write(header[:]); err != nil {
		return "", fmt.Errorf("imagegen: write disk cache file: %w", err)
	}
	if _, err := f.Write(value); err != nil {
		return "", fmt.Errorf("imagegen: write disk cache file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("imagegen: write disk cache file: %w", err)
	}
	if err := os.Chtimes(f.Name(), now, now); err != nil {
		return "", fmt.Errorf("imagegen: set disk cache file time: %w", err)
	}
	return f.Name(), nil
}

// insertLocked records a file of size bytes as the most recently used,
// replacing any earlier record of the same name. c.mu must be held.
func (c *DiskCache) insertLocked(name string, size int64) {
	if old := c.entries[name]; old != nil {
		c.lru.Remove(old.elem)
		c.totalBytes -= old.size
	}
	e := &diskCacheEntry{name: name, size: size}
	e.elem = c.lru.PushFront(e)
	c.entries[name] = e
	c.totalBytes += size
}

// evictLocked removes the least recently used files, except keep, until the
// total fits in MaxBytes, and returns what it removed for logging. c.mu must
// be held.
//
// NOTE: the files are deleted while c.mu is held, so a Set that evicts many
// files delays every other Get and Set until the deletions finish.
func (c *DiskCache) evictLocked(keep *diskCacheEntry) []diskCacheRemoval {
	var removed []diskCacheRemoval
	for c.totalBytes > c.maxBytes {
		back := c.lru.Back()
		if back == nil {
			break
		}
		victim := back.Value.(*diskCacheEntry)
		if victim == keep {
			if back.Prev() == nil {
				break
			}
			victim = back.Prev().Value.(*diskCacheEntry)
		}
		c.removeLocked(victim)
		removed = append(removed, removeDiskCacheFile(c.filePath(victim.name), errDiskCacheEvicted))
	}
	return removed
}

var errDiskCacheEvicted = errors.New("imagegen: disk cache entry evicted")

func (c *DiskCache) logRemovals(removals []diskCacheRemoval) {
	for _, r := range removals {
		c.logRemoval(r)
	}
}

func (c *DiskCache) removeLocked(e *diskCacheEntry) {
	c.lru.Remove(e.elem)
	delete(c.entries, e.name)
	c.totalBytes -= e.size
}

// forget drops the record of a file that no longer exists, unless a newer
// write replaced the record meanwhile.
func (c *DiskCache) forget(name string, entry *diskCacheEntry) {
	if entry == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[name] == entry {
		c.removeLocked(entry)
	}
}

// discard removes a corrupt or expired file and its record, unless a write
// replaced the file after entry was read: a write renames under c.mu, so
// while c.mu is held the file on disk is the one entry records.
func (c *DiskCache) discard(name string, entry *diskCacheEntry, reason error) {
	c.mu.Lock()
	if c.entries[name] != entry {
		c.mu.Unlock()
		return
	}
	if entry != nil {
		c.removeLocked(entry)
	}
	removed := removeDiskCacheFile(c.filePath(name), reason)
	c.mu.Unlock()

	c.logRemoval(removed)
}

func (c *DiskCache) filePath(name string) string {
	return filepath.Join(c.dir, name[:2], name)
}

// diskCacheFileName returns the file name of key: its SHA-256 in hex. Hashing
// makes any key a safe file name, whatever its characters or length.
func diskCacheFileName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

func isDiskCacheShardName(name string) bool {
	return len(name) == 2 && isLowerHex(name)
}

func isDiskCacheFileName(name string) bool {
	return len(name) == 2*sha256.Size && isLowerHex(name)
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func encodeDiskCacheHeader(expiresAt int64, value []byte) [diskCacheHeaderSize]byte {
	var h [diskCacheHeaderSize]byte
	copy(h[:], diskCacheMagic)
	h[4] = diskCacheVersion
	binary.BigEndian.PutUint64(h[8:], uint64(expiresAt))
	binary.BigEndian.PutUint64(h[16:], uint64(len(value)))
	crc := crc32.Update(0, diskCacheCRCTable, h[:24])
	crc = crc32.Update(crc, diskCacheCRCTable, value)
	binary.BigEndian.PutUint32(h[24:], crc)
	return h
}

// parseDiskCacheHeader returns the expiry and value length from a header,
// without checking the CRC, which covers the value too.
func parseDiskCacheHeader(h []byte) (expiresAt int64, length uint64, err error) {
	if len(h) < diskCacheHeaderSize || string(h[:4]) != diskCacheMagic {
		return 0, 0, fmt.Errorf("%w: missing magic bytes", errDiskCacheCorrupt)
	}
	if h[4] != diskCacheVersion || h[5] != 0 || h[6] != 0 || h[7] != 0 {
		return 0, 0, fmt.Errorf("%w: unknown version %d", errDiskCacheCorrupt, h[4])
	}
	return int64(binary.BigEndian.Uint64(h[8:])), binary.BigEndian.Uint64(h[16:]), nil
}

// parseDiskCacheFile checks a whole cache file and returns its value, a slice
// of data, and its expiry.
func parseDiskCacheFile(data []byte) (value []byte, expiresAt int64, err error) {
	expiresAt, length, err := parseDiskCacheHeader(data)
	if err != nil {
		return nil, 0, err
	}
	if length != uint64(len(data)-diskCacheHeaderSize) {
		return nil, 0, fmt.Errorf("%w: file has %d bytes, header records %d", errDiskCacheCorrupt, len(data), length+diskCacheHeaderSize)
	}
	value = data[diskCacheHeaderSize:]
	crc := crc32.Update(0, diskCacheCRCTable, data[:24])
	crc = crc32.Update(crc, diskCacheCRCTable, value)
	if crc != binary.BigEndian.Uint32(data[24:]) {
		return nil, 0, fmt.Errorf("%w: checksum mismatch", errDiskCacheCorrupt)
	}
	return value, expiresAt, nil
}

func diskCacheExpired(expiresAt int64, now time.Time) bool {
	return expiresAt != 0 && now.UnixNano() >= expiresAt
}
