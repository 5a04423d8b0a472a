package redislimit

import "github.com/redis/go-redis/v9"

// The scripts read the time from Redis's TIME, so that processes whose clocks
// disagree still agree on when a pause ends and a lease expires. Times are in
// Unix milliseconds. redis.replicate_commands() lets a script write after
// TIME on Redis before 5.0 and does nothing on later versions.

// admitScript checks a key's pause and, when ARGV[1] names a lease, takes an
// in-flight slot for it.
//
// KEYS[1] is the pause key and KEYS[2], present only with a lease, the
// in-flight sorted set. ARGV[1] is the lease id or "", ARGV[2] the maximum
// number of leases and ARGV[3] the lease lifetime in milliseconds.
//
// It returns {pause, granted, oldest}: the milliseconds left of the pause (0
// when not paused, in which case nothing else happened), 1 if the lease was
// added, and, when the set is full, the milliseconds until its oldest lease
// expires. Expired leases are removed first. The set's own expiry is kept at
// least as long as its newest lease, so that an unused set disappears.
var admitScript = redis.NewScript(`
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local pause_until = tonumber(redis.call('GET', KEYS[1]))
if pause_until and pause_until > now then
  return {pause_until - now, 0, 0}
end
if ARGV[1] == '' then
  return {0, 0, 0}
end

local max_leases = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= max_leases then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return {0, 0, math.max(tonumber(oldest[2]) - now, 1)}
end
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[2]) < ttl then
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return {0, 1, 0}
`)

// pauseScript pauses a key for ARGV[1] milliseconds from now, unless it is
// already paused until then or later. KEYS[1] is the pause key. It returns 1
// if it stored the new end, 0 if the current pause lasts as long or longer.
var pauseScript = redis.NewScript(`
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pause = tonumber(ARGV[1])
local pause_until = now + pause

local current = tonumber(redis.call('GET', KEYS[1]))
if current and current >= pause_until then
  return 0
end
redis.call('SET', KEYS[1], string.format('%d', pause_until), 'PX', pause)
return 1
`)

// renewScript moves the expiry of lease ARGV[1] to ARGV[2] milliseconds from
// now in each in-flight set KEYS[...], where it is still present, and keeps
// each set's own expiry at least that long. Acquire renews its leases before
// each wait, past its end, and when the request goes out, so LeaseTTL needs
// to cover only the request.
var renewScript = redis.NewScript(`
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + ttl, ARGV[1])
  if redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, ttl)
  end
end
return 0
`)
