-- Queue-wide limits checked by the claim script: fleet-wide concurrency, rate limit (the pause
-- flag is read with the queue's meta record, in the claim script itself).

-- How many of n may start without more than global_max tasks leased in the whole fleet.
local function global_allow(leased, n, global_max)
  if global_max <= 0 then
    return n
  end
  return math.max(0, math.min(n, global_max - redis.call('ZCARD', leased)))
end

-- Token bucket shared by every process: `rate` tasks per `period_ms`, at most `burst` at once.
-- Returns the tokens available now (a float) and the bucket's time (ms). The bucket's time
-- never moves back: a process whose clock is behind refills nothing and spends at the
-- bucket's time, so clocks that differ slightly cannot refill the same stretch twice.
local function rate_tokens(bucket, now, rate, period_ms, burst)
  local f = redis.call('HMGET', bucket, 'tokens', 'ts')
  local tokens = tonumber(f[1]) or burst
  local ts = tonumber(f[2]) or now
  if now > ts then
    tokens = math.min(burst, tokens + (now - ts) * rate / period_ms)
    ts = now
  end
  return tokens, ts
end

-- Milliseconds until the bucket holds a whole token again (the epsilon absorbs float error).
local function token_wait(tokens, rate, period_ms)
  return math.max(1, math.ceil((1 - tokens) * period_ms / rate - 1e-6))
end

-- Spend `taken` tokens at `now`; returns when (ms) the next whole token will be there.
local function rate_spend(bucket, now, tokens, taken, rate, period_ms, burst)
  local left = tokens - taken
  redis.call('HSET', bucket, 'tokens', tostring(left), 'ts', now) -- now: the bucket's time
  -- keep the bucket until it would be full again (an expired bucket starts full)
  redis.call('PEXPIRE', bucket, math.ceil((burst - left) * period_ms / rate) + period_ms + 1000)
  if left >= 1 then
    return now
  end
  return now + token_wait(left, rate, period_ms)
end
