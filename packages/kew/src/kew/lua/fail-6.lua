-- fail: record a failed attempt: schedule the retry, or mark the task FAILED for good.
--
-- KEYS[1] task       HASH  the task
-- KEYS[2] leased     ZSET  claimed ids by lease expiry (ms)
-- KEYS[3] scheduled  ZSET  retry-waiting ids by due time (ms)
-- KEYS[4] wake       LIST  wake-up token (a retry changes the next due time)
-- KEYS[5] breaker    HASH  circuit breaker of the queue
-- KEYS[6] events     channel: "retry <id>" or "failed <id>"
--
-- ARGV[1] task id  ARGV[2] fence  ARGV[3] now (ms)  ARGV[4] error text
-- ARGV[5] retry due (ms; 0 = no retry left: FAILED)  ARGV[6] retention (ms)
-- ARGV[7] breaker max failures  ARGV[8] breaker reset (ms)  ARGV[9] count for breaker (1/0)
--
-- Returns {code, consecutive breaker failures}: OK, or LEASE_LOST when the fence is stale.
--!include includes/codes.lua
--!include includes/ready_score.lua
--!include includes/breaker.lua
local task, leased, scheduled, wake, breaker, events =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local id = ARGV[1]
local now = tonumber(ARGV[3])
local retry_due = tonumber(ARGV[5])
local retention = tonumber(ARGV[6])

if redis.call('HGET', task, 'fence') ~= ARGV[2] or not redis.call('ZSCORE', leased, id) then
  return {LEASE_LOST, 0}
end
redis.call('ZREM', leased, id)
if retry_due > 0 then
  redis.call('HSET', task, 'status', 'retry', 'error', ARGV[4], 'due', retry_due, 'owner', '')
  redis.call('HINCRBY', task, 'retries', 1)
  redis.call('ZADD', scheduled, retry_due, id)
  wake_workers(wake)
  redis.call('PUBLISH', events, 'retry ' .. id)
else
  redis.call('HSET', task, 'status', 'failed', 'error', ARGV[4], 'completed', now, 'owner', '')
  redis.call('PEXPIRE', task, retention)
  redis.call('PUBLISH', events, 'failed ' .. id)
end
local failures = 0
if ARGV[9] == '1' then
  failures = breaker_failure(breaker, now, tonumber(ARGV[7]), tonumber(ARGV[8]), retention)
end
return {OK, failures}
