"""The Lua scripts of `RedisRateLimiter`, and where its keys live. Times are Redis's own (`TIME`), in
whole microseconds, so that every process and machine decides on one clock.

Keys of a budget (all under one hash tag, so that a Redis Cluster keeps them in one slot):

```
{prefix}:{<budget>}:epoch            which incarnation of the store the windows belong to
{prefix}:{<budget>}:spec             the limits every process must agree on
{prefix}:{<budget>}:<cat>:w<i>       list: the last max_calls grant times of a window ("shared" for "*")
{prefix}:{<budget>}:<cat>:queue      zset: ticket -> when it joined the line (one ticket per process)
{prefix}:{<budget>}:<cat>:leases     zset: ticket -> when it lapses unless its process asks again
{prefix}:{<budget>}:<cat>:seq        the counter that numbers places in line
{prefix}:{<budget>}:<cat>:rounds     hash: ticket -> permits it was granted since it joined
{prefix}:{<budget>}:<cat>:hold       hash: until, at, retry_after of the last refusal from the broker
```
"""

from __future__ import annotations

__all__ = [
    "DECIDE",
    "GRANTED",
    "LEAVE",
    "RECOVER",
    "REFUND",
    "REFUSE",
    "SPEC_MISMATCH",
    "STALE_EPOCH",
    "WAIT",
]

GRANTED, WAIT, STALE_EPOCH, SPEC_MISMATCH = 0, 1, 3, 4

_COMMON = """
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function text(n)
  return string.format('%d', n)
end
local function ms(us)
  return math.ceil(us / 1000) + 1
end
local function keep_at_least(key, us)
  if redis.call('PTTL', key) < ms(us) then
    redis.call('PEXPIRE', key, text(ms(us)))
  end
end
"""

DECIDE = (
    _COMMON
    + """
-- KEYS: epoch, spec, queue, leases, seq, hold, rounds, then one list per window (own, then shared)
-- ARGV: epoch, spec, ticket, grace_us, keep_us, then max_calls and span_us of each window
-- One decision for the process holding `ticket`: a grant now, or how long to wait for its turn.
local epoch = redis.call('GET', KEYS[1])
if epoch ~= ARGV[1] then
  return {3, epoch or ''}
end
local spec = redis.call('GET', KEYS[2])
if spec and spec ~= ARGV[2] then
  return {4, spec}
end
local now = now_us()
local grace, keep = tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('SET', KEYS[2], ARGV[2], 'PX', text(ms(keep)))

-- Places whose process stopped asking (gone, or stalled past its lease) are given up.
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', text(now))
for _, gone in ipairs(lapsed) do
  redis.call('ZREM', KEYS[3], gone)
  redis.call('HDEL', KEYS[7], gone)
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', text(now))

-- Processes are served in rounds: a process takes its next permit only when every process ahead
-- of it in the round has had as many (ties go in the order they joined). One that joins starts
-- at the level of the least served, so it neither jumps the line nor waits for old rounds.
local ticket = ARGV[3]
local line = redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')
local served = {}
local least
for i = 1, #line, 2 do
  served[line[i]] = tonumber(redis.call('HGET', KEYS[7], line[i])) or 0
  if least == nil or served[line[i]] < least then
    least = served[line[i]]
  end
end
local joined = tonumber(redis.call('ZSCORE', KEYS[3], ticket))
if not joined then
  joined = redis.call('INCR', KEYS[5])
  redis.call('ZADD', KEYS[3], joined, ticket)
  served[ticket] = least or 0
  redis.call('HSET', KEYS[7], ticket, text(served[ticket]))
end
local mine = served[ticket]
-- Permits owed to the others before this one: each must reach this process's level, plus one
-- more for those that joined before it.
local owed = 0
for i = 1, #line, 2 do
  local other = line[i]
  if other ~= ticket then
    local level = mine
    if tonumber(line[i + 1]) < joined then
      level = mine + 1
    end
    if level > served[other] then
      owed = owed + level - served[other]
    end
  end
end

local wait, held = 0, 0
local hold = redis.call('HMGET', KEYS[6], 'until', 'at', 'retry_after')
local held_until = tonumber(hold[1])
if held_until and held_until > now then
  wait, held = held_until - now, 1
end
-- This process may go when owed + 1 permits are free in every window; otherwise it waits until
-- the grant holding its slot expires.
local windows = #KEYS - 7
for i = 1, windows do
  local key = KEYS[7 + i]
  local max_calls, span = tonumber(ARGV[4 + 2 * i]), tonumber(ARGV[5 + 2 * i])
  local length = redis.call('LLEN', key)
  local slot = owed - (max_calls - length)
  if slot >= 0 then
    local free_at
    if length == 0 then
      free_at = now + span  -- more owed than one window holds: look again in a window
    else
      free_at = tonumber(redis.call('LINDEX', key, math.min(slot, length - 1))) + span
    end
    if free_at - now > wait then
      wait, held = free_at - now, 0
    end
  end
end

local refused_at, refused_retry = tonumber(hold[2]) or 0, tonumber(hold[3]) or 0
for i = 3, 7 do
  keep_at_least(KEYS[i], keep + math.max(wait, 0) + grace)
end
if wait <= 0 then
  for i = 1, windows do
    local key = KEYS[7 + i]
    redis.call('RPUSH', key, text(now))
    redis.call('LTRIM', key, text(-tonumber(ARGV[4 + 2 * i])), -1)
    redis.call('PEXPIRE', key, text(ms(tonumber(ARGV[5 + 2 * i]))))
  end
  redis.call('HSET', KEYS[7], ticket, text(mine + 1))
  redis.call('ZADD', KEYS[4], text(now + grace), ticket)
  return {0, now, 0, refused_at, refused_retry}
end
redis.call('ZADD', KEYS[4], text(now + wait + grace), ticket)
return {1, wait, held, refused_at, refused_retry}
"""
)

RECOVER = (
    _COMMON
    + """
-- KEYS: epoch, then every window list of the budget. ARGV: the epoch this process knew ('' for
-- none), a new epoch id, then max_calls and span_us of each window.
-- The windows are gone (Redis restarted without them, or was flushed): nobody knows what was
-- granted in the last period, so every window is taken to be full as of now. A process that never
-- saw an epoch cannot tell a first start from a loss, and starts the windows empty.
local function hold_every_window(now)
  for i = 2, #KEYS do
    local max_calls, span = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
    redis.call('DEL', KEYS[i])
    for _ = 1, max_calls do
      redis.call('RPUSH', KEYS[i], text(now))
    end
    redis.call('PEXPIRE', KEYS[i], text(ms(span)))
  end
end
local current, known = redis.call('GET', KEYS[1]), ARGV[1]
if current == known then
  return current
end
local witnessed = known ~= ''
if current then
  -- Another process made the new epoch. Made by one that could not tell a loss: hold now.
  if witnessed and string.sub(current, -1) == '-' then
    hold_every_window(now_us())
    current = string.sub(current, 1, -2) .. '+'
    redis.call('SET', KEYS[1], current)
  end
  return current
end
local fresh = ARGV[2] .. (witnessed and '+' or '-')
redis.call('SET', KEYS[1], fresh)
if witnessed then
  hold_every_window(now_us())
end
return fresh
"""
)

LEAVE = """
-- KEYS: queue, leases, rounds. ARGV: ticket. A process with nobody waiting gives up its place.
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return redis.call('ZREM', KEYS[2], ARGV[1])
"""

REFUND = """
-- KEYS: epoch, then the windows of one category. ARGV: epoch, the grant time to take back.
-- A grant whose waiter was cancelled before the reply arrived, with nobody else to take it.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local returned = 0
for i = 2, #KEYS do
  returned = returned + redis.call('LREM', KEYS[i], -1, ARGV[2])
end
return returned
"""

REFUSE = (
    _COMMON
    + """
-- KEYS: hold. ARGV: retry_after_us. The broker refused a call: every process holds back.
local now, retry = now_us(), tonumber(ARGV[1])
local held_until = tonumber(redis.call('HGET', KEYS[1], 'until')) or 0
redis.call('HSET', KEYS[1], 'until', text(math.max(held_until, now + retry)), 'at', text(now),
  'retry_after', text(retry))
keep_at_least(KEYS[1], math.max(held_until, now + retry) - now)
return 1
"""
)
