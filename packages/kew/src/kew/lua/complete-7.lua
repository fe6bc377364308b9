-- complete: record the results of finished runs (variadic over tasks: acks are batched).
--
-- KEYS[1] leased   ZSET  claimed ids by lease expiry (ms)
-- KEYS[2] breaker  HASH  circuit breaker (a success closes it and resets the count)
-- KEYS[3] prefix   task key prefix (carries the queue's hash tag)
-- KEYS[4] events   channel: "completed <id>" is published per task
-- KEYS[5] wake     LIST  wake-up token: a finished task frees a fleet-wide slot, and closing
--                        an open breaker lets idle workers claim again
-- KEYS[6] ready    ZSET  ready ids (workers are woken only when some wait)
-- KEYS[7] idprefix prefix of the namespace's task-id keys (they expire with the records)
--
-- ARGV[1] now (ms)  ARGV[2] retention (ms)
-- ARGV[3..] triples: task id, fence token, encoded result
--
-- Returns one code per task: OK, or LEASE_LOST when the fence no longer matches (the task was
-- reclaimed and its newer run owns the outcome). A repeat of an ack that was applied but whose
-- reply was lost (a dropped connection, a failover) finds the task completed under the same
-- fence and answers OK again without writing anything.
--!include includes/codes.lua
--!include includes/ready_score.lua
local leased, breaker, prefix, events, wake, ready, idprefix =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local now = ARGV[1]
local retention = tonumber(ARGV[2])
local codes = {}
local succeeded = false
for i = 3, #ARGV, 3 do
  local id = ARGV[i]
  local key = prefix .. id
  local f = redis.call('HMGET', key, 'fence', 'status')
  if f[1] ~= ARGV[i + 1] then
    codes[#codes + 1] = LEASE_LOST
  elseif not redis.call('ZSCORE', leased, id) then
    codes[#codes + 1] = f[2] == 'completed' and OK or LEASE_LOST
  else
    redis.call('HSET', key, 'status', 'completed', 'completed', now, 'result', ARGV[i + 2],
      'owner', '')
    redis.call('HDEL', key, 'func', 'args', 'error', 'cancel')
    redis.call('PEXPIRE', key, retention)
    redis.call('PEXPIRE', idprefix .. id, retention)
    redis.call('ZREM', leased, id)
    redis.call('PUBLISH', events, 'completed ' .. id)
    codes[#codes + 1] = OK
    succeeded = true
  end
end
if succeeded then
  redis.call('DEL', breaker)
  if redis.call('ZCARD', ready) > 0 then
    wake_workers(wake)
  end
end
return codes
