-- Queue-wide limits checked by the claim script: pause, fleet-wide concurrency, rate limit.

local function queue_paused(meta)
  return redis.call('HGET', meta, 'paused') == '1'
end

-- How many of n may start without more than global_max tasks leased in the whole fleet.
local function global_allow(leased, n, global_max)
  if global_max <= 0 then
    return n
  end
  return math.max(0, math.min(n, global_max - redis.call('ZCARD', leased)))
end

-- Token bucket shared by every process: `rate` tasks per `period_ms`, at most `burst` at once.
-- Returns the tokens available now (a float).
local function rate_tokens(bucket, now, rate, period_ms, burst)
  local f = redis.call('HMGET', bucket, 'tokens', 'ts')
  local tokens = tonumber(f[1]) or burst
  local ts = tonumber(f[2]) or now
  if now > ts then
    tokens = math.min(burst, tokens + (now - ts) * rate / period_ms)
  end
  return tokens
end

-- Spend `taken` tokens at `now`; returns when (ms) the next whole token will be there.
local function rate_spend(bucket, now, tokens, taken, rate, period_ms)
  local left = tokens - taken
  redis.call('HSET', bucket, 'tokens', tostring(left), 'ts', now)
  redis.call('PEXPIRE', bucket, period_ms * 2 + 60000)
  if left >= 1 then
    return now
  end
  return now + math.ceil((1 - left) * period_ms / rate)
end
