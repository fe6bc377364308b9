-- claim: lease up to N ready tasks to one worker (one round trip per batch of tasks).
--
-- KEYS[1] ready      ZSET  ready ids by (priority, sequence)
-- KEYS[2] scheduled  ZSET  deferred / retry-waiting ids by due time (ms)
-- KEYS[3] leased     ZSET  claimed ids by lease expiry (ms)
-- KEYS[4] wake       LIST  wake-up token, passed on when ready tasks remain
-- KEYS[5] meta       HASH  sequence counter, paused flag
-- KEYS[6] breaker    HASH  circuit breaker of the queue
-- KEYS[7] prefix     task key prefix (carries the queue's hash tag)
-- KEYS[8] rate       HASH  token bucket of the queue's rate limit
-- KEYS[9] idprefix   prefix of the namespace's task-id keys
-- KEYS[10] events    channel: "cancelled <id>" for a reclaimed task whose cancel was asked
-- KEYS[11] dead      ZSET  dead letters (a task reclaimed more than max_reclaims times)
--
-- ARGV[1] now (ms)  ARGV[2] N (free slots)  ARGV[3] lease (ms)  ARGV[4] owner id
-- ARGV[5] breaker reset timeout (ms)  ARGV[6] limit of promotions / reclaims per call
-- ARGV[7] fleet-wide max running (0 = none)  ARGV[8] rate (tasks per period, 0 = none)
-- ARGV[9] rate period (ms)  ARGV[10] rate burst (tokens)
-- ARGV[11] max reclaims of one task (0 = no limit)  ARGV[12] dead-letter retention (ms)
-- ARGV[13] fence token: unique per claim call, made by the caller (a counter kept here would be
--          handed out twice after a failover that lost a claim's write)
--
-- Returns {next_due, blocked, rows...}: next_due is the earliest time (ms) at which something
-- may become claimable (a scheduled task, a lease expiry, the breaker's trial, the next rate
-- token), or -1 for none; flags: 1 when ready tasks were held back (breaker, pause, limits),
-- + 2 when the queue's meta record is missing (its data was lost: Redis restarted empty);
-- then 9 values per claimed task: id, fence, type, priority, func, args, retries, queued (ms),
-- attempts.
--!include includes/codes.lua
--!include includes/ready_score.lua
--!include includes/promote_due.lua
--!include includes/breaker.lua
--!include includes/limits.lua

local ready, scheduled, leased, wake, meta, breaker, prefix, bucket, idprefix, events, dead =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10],
  KEYS[11]
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local lease_ms = tonumber(ARGV[3])
local owner = ARGV[4]
local reset_ms = tonumber(ARGV[5])
local limit = tonumber(ARGV[6])
local global_max = tonumber(ARGV[7])
local fence = ARGV[13]
local rate, period_ms, burst = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])

-- the queue's meta record: paused flag, and whether it exists at all ('limits' is written when
-- the queue is registered; a missing one means its data was lost)
local m = redis.call('HMGET', meta, 'paused', 'limits')

-- the first entries of the schedule and of the leases: promote / reclaim only when due, and
-- (unless that changed them) reuse them for next_due at the end
local first_due = tonumber(redis.call('ZRANGE', scheduled, 0, 0, 'WITHSCORES')[2])
local first_lease = tonumber(redis.call('ZRANGE', leased, 0, 0, 'WITHSCORES')[2])
if first_due and first_due <= now then
  promote_due(scheduled, ready, meta, prefix, now, limit)
  first_due = tonumber(redis.call('ZRANGE', scheduled, 0, 0, 'WITHSCORES')[2])
end
if first_lease and first_lease <= now then
  reclaim_expired(leased, ready, meta, prefix, idprefix, events, now, limit,
    tonumber(ARGV[11]), dead, tonumber(ARGV[12]))
  first_lease = tonumber(redis.call('ZRANGE', leased, 0, 0, 'WITHSCORES')[2])
end

local allowed, probe_at = breaker_allow(breaker, now, n, reset_ms)
if m[1] == '1' then -- paused
  allowed = 0
end
allowed = global_allow(leased, allowed, global_max)
local tokens, bucket_ts = 0, now
if rate > 0 and allowed > 0 then
  tokens, bucket_ts = rate_tokens(bucket, now, rate, period_ms, burst)
  allowed = math.min(allowed, math.floor(tokens))
end

local result = {-1, 0}
local claimed = 0
local emptied = false -- the pop took the last ready task
if allowed > 0 then
  local popped = redis.call('ZPOPMIN', ready, allowed)
  emptied = #popped < 2 * allowed
  for i = 1, #popped, 2 do
    local id = popped[i]
    local key = prefix .. id
    local f = redis.call('HMGET', key, 'type', 'priority', 'func', 'args', 'retries', 'queued',
      'attempts')
    if f[1] then
      -- attempts counted up in the one write (as HINCRBY would, atomically here)
      local attempts = (tonumber(f[7]) or 0) + 1
      redis.call('HSET', key, 'fence', fence, 'attempts', attempts, 'status', 'processing',
        'started', now, 'owner', owner)
      redis.call('ZADD', leased, now + lease_ms, id)
      local r = #result
      result[r + 1] = id
      result[r + 2] = fence
      result[r + 3] = f[1]
      result[r + 4] = f[2]
      result[r + 5] = f[3]
      result[r + 6] = f[4]
      result[r + 7] = f[5] or 0
      result[r + 8] = f[6]
      result[r + 9] = attempts
      claimed = claimed + 1
    end
  end
  if claimed > 0 and probe_at then
    -- half-open: this claim is the trial; the next one waits another reset period
    redis.call('HSET', breaker, 'probe_at', now + reset_ms)
    probe_at = now + reset_ms
  end
end

local function earlier(a, b)
  if b and (a < 0 or b < a) then return b end
  return a
end
local next_due = -1
local waiting = 0
if not emptied then
  waiting = redis.call('ZCARD', ready)
end
if waiting > 0 and claimed < n then
  result[2] = 1 -- something held ready tasks back
  if probe_at then next_due = earlier(next_due, probe_at) end
end
if rate > 0 and claimed > 0 then
  local next_token = rate_spend(bucket, bucket_ts, tokens, claimed, rate, period_ms, burst)
  if waiting > 0 and next_token > now then
    result[2] = 1
    next_due = earlier(next_due, next_token)
  end
elseif rate > 0 and waiting > 0 and allowed == 0 then
  local t, ts = rate_tokens(bucket, now, rate, period_ms, burst)
  if t < 1 then
    next_due = earlier(next_due, ts + token_wait(t, rate, period_ms))
  end
end
if waiting > 0 and result[2] == 0 then
  wake_workers(wake)
end

if claimed > 0 and (not first_lease or now + lease_ms < first_lease) then
  first_lease = now + lease_ms
end
next_due = earlier(next_due, first_due)
next_due = earlier(next_due, first_lease)
result[1] = next_due
if not m[2] then
  result[2] = result[2] + 2 -- the queue's data is gone (Redis restarted empty or flushed)
end
return result
