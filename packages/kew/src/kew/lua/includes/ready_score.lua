-- The order of the ready set: lower priority value first, then submission sequence (FIFO).
-- 2^40 sequence numbers per priority keep the score an exact integer in a double (< 2^53).
local function ready_score(priority, seq)
  return tonumber(priority) * 1099511627776 + tonumber(seq)
end

-- Put a task into the ready set, giving it a new sequence number when it has none.
local function make_ready(ready, meta, key, id, priority, seq)
  if not seq or seq == false then
    seq = redis.call('HINCRBY', meta, 'seq', 1)
    redis.call('HSET', key, 'seq', seq)
  end
  redis.call('ZADD', ready, ready_score(priority, seq), id)
end

-- Leave one wake-up token for idle workers (the list never holds more than one).
local function wake_workers(wake)
  if redis.call('LLEN', wake) == 0 then
    redis.call('LPUSH', wake, '1')
    redis.call('PEXPIRE', wake, 600000)
  end
end
