-- requeue_dead: run dead letters again with fresh retries, keeping their history (attempts,
-- errors).
--
-- KEYS[1] dead    ZSET  dead letters by failure time (ms)
-- KEYS[2] ready   ZSET  ready ids by (priority, sequence)
-- KEYS[3] meta    HASH  sequence counter
-- KEYS[4] wake    LIST  wake-up token
-- KEYS[5] prefix  task key prefix (carries the queue's hash tag)
-- KEYS[6] idprefix  prefix of the namespace's task-id keys
--
-- ARGV: the task ids to requeue; none means every dead letter of the queue.
-- Returns the number of tasks requeued (ids that are not dead letters are skipped).
--!include includes/ready_score.lua
local dead, ready, meta, wake, prefix, idprefix = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local ids = ARGV
if #ids == 0 then
  ids = redis.call('ZRANGE', dead, 0, -1)
end
local requeued = 0
for _, id in ipairs(ids) do
  local key = prefix .. id
  if redis.call('ZSCORE', dead, id) then
    redis.call('ZREM', dead, id)
    local f = redis.call('HMGET', key, 'status', 'priority')
    if f[1] == 'failed' then
      redis.call('PERSIST', key)
      redis.call('SET', idprefix .. id, redis.call('HGET', key, 'queue'))
      redis.call('HSET', key, 'status', 'queued', 'retries', 0, 'due', 0)
      redis.call('HDEL', key, 'completed', 'started', 'seq', 'cancel')
      make_ready(ready, meta, key, id, f[2], nil)
      requeued = requeued + 1
    end
  end
end
if requeued > 0 then
  wake_workers(wake)
end
return requeued
