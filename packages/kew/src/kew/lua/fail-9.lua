-- fail: record a failed attempt: schedule the retry, or mark the task FAILED for good and keep
-- it in the queue's dead-letter set.
--
-- KEYS[1] task       HASH  the task
-- KEYS[2] leased     ZSET  claimed ids by lease expiry (ms)
-- KEYS[3] scheduled  ZSET  retry-waiting ids by due time (ms)
-- KEYS[4] wake       LIST  wake-up token (a retry changes the next due time; a final failure
--                          frees a fleet-wide slot)
-- KEYS[5] breaker    HASH  circuit breaker of the queue
-- KEYS[6] events     channel: "retry <id>" or "failed <id>"
-- KEYS[7] dead       ZSET  dead letters: ids of tasks failed for good, by failure time (ms)
-- KEYS[8] ready      ZSET  ready ids (workers are woken only when some wait)
-- KEYS[9] idkey      STRING the task's namespace-wide id key (expires with the record)
--
-- ARGV[1] task id  ARGV[2] fence  ARGV[3] now (ms)  ARGV[4] error text
-- ARGV[5] retry due (ms; 0 = no retry left: FAILED)  ARGV[6] dead-letter retention (ms)
-- ARGV[7] breaker max failures  ARGV[8] breaker reset (ms)  ARGV[9] count for breaker (1/0)
--
-- The error of every attempt is appended to the task's 'errors' field, separated by \30.
-- Returns {code, consecutive breaker failures, outcome}: code OK, or LEASE_LOST when the fence
-- is stale; outcome 'retry', 'failed', or 'cancelled' when cancel_task had asked for the run to
-- stop (such a task is neither retried nor kept as a dead letter). A repeat of a call that was
-- applied but whose reply was lost finds the task in its outcome under the same fence, with this
-- attempt's error last: it answers OK and that outcome again, writing nothing (breaker count 0).
--!include includes/codes.lua
--!include includes/ready_score.lua
--!include includes/breaker.lua
--!include includes/promote_due.lua
local task, leased, scheduled, wake, breaker, events, dead, ready, idkey =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local id = ARGV[1]
local now = tonumber(ARGV[3])
local retry_due = tonumber(ARGV[5])
local retention = tonumber(ARGV[6])

local current = redis.call('HMGET', task, 'fence', 'status', 'error')
if current[1] ~= ARGV[2] then
  return {LEASE_LOST, 0, ''}
end
if not redis.call('ZSCORE', leased, id) then
  local done = {retry = 'retry', failed = 'failed', cancelled = 'cancelled'}
  if done[current[2]] and current[3] == ARGV[4] then
    return {OK, 0, done[current[2]]}
  end
  return {LEASE_LOST, 0, ''}
end
redis.call('ZREM', leased, id)
local outcome = 'failed'
local errors = redis.call('HGET', task, 'errors')
if errors then
  errors = errors .. '\30' .. ARGV[4]
else
  errors = ARGV[4]
end
redis.call('HSET', task, 'error', ARGV[4], 'errors', errors, 'owner', '')
if finish_if_cancel_requested(task, idkey, events, id, now) then
  outcome = 'cancelled'
elseif retry_due > 0 then
  outcome = 'retry'
  redis.call('HSET', task, 'status', 'retry', 'due', retry_due)
  redis.call('HINCRBY', task, 'retries', 1)
  redis.call('ZADD', scheduled, retry_due, id)
  wake_workers(wake)
  redis.call('PUBLISH', events, 'retry ' .. id)
else
  redis.call('HSET', task, 'status', 'failed', 'completed', now)
  redis.call('PEXPIRE', task, retention)
  redis.call('PEXPIRE', idkey, retention)
  redis.call('ZADD', dead, now, id)
  redis.call('ZREMRANGEBYSCORE', dead, '-inf', now - retention) -- their records expired too
  if redis.call('ZCARD', ready) > 0 then
    wake_workers(wake)
  end
  redis.call('PUBLISH', events, 'failed ' .. id)
end
local failures = 0
if ARGV[9] == '1' then
  failures = breaker_failure(breaker, now, tonumber(ARGV[7]), tonumber(ARGV[8]), retention)
end
return {OK, failures, outcome}
