-- Circuit breaker HASH: state ('closed' | 'open'), failures (consecutive), opened_at and
-- probe_at (ms). An open breaker whose probe_at has passed is half-open: one trial may run.
local function breaker_failure(breaker, now, max_failures, reset_ms, ttl_ms)
  local failures = redis.call('HINCRBY', breaker, 'failures', 1)
  local state = redis.call('HGET', breaker, 'state')
  if state == 'open' then
    -- the half-open trial (or a straggler) failed: stay open for another reset period
    redis.call('HSET', breaker, 'opened_at', now, 'probe_at', now + reset_ms)
  elseif failures >= max_failures then
    redis.call('HSET', breaker, 'state', 'open', 'opened_at', now, 'probe_at', now + reset_ms)
  else
    redis.call('HSET', breaker, 'state', 'closed')
  end
  -- an open breaker must outlive its reset period, whatever the retention
  redis.call('PEXPIRE', breaker, math.max(ttl_ms, 2 * reset_ms))
  return failures
end

-- How many tasks the breaker lets a claim take: n when closed, 0 while open, 1 when half-open
-- (and the next trial is pushed back by one reset period). Returns allowed, probe_at.
local function breaker_allow(breaker, now, n, reset_ms)
  local f = redis.call('HMGET', breaker, 'state', 'probe_at')
  if f[1] ~= 'open' then
    return n, false
  end
  local probe_at = tonumber(f[2]) or 0
  if now < probe_at then
    return 0, probe_at
  end
  return math.min(n, 1), probe_at
end
