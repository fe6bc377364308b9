-- release: hand running tasks back to the ready set at once (shutdown), at their old place.
--
-- KEYS[1] leased  ZSET  claimed ids by lease expiry (ms)
-- KEYS[2] ready   ZSET  ready ids by (priority, sequence)
-- KEYS[3] wake    LIST  wake-up token for the other workers
-- KEYS[4] meta    HASH  sequence counter (for tasks that somehow have none)
-- KEYS[5] prefix  task key prefix (carries the queue's hash tag)
-- KEYS[6] idprefix  prefix of the namespace's task-id keys
-- KEYS[7] events  channel: "cancelled <id>" for a task whose cancel was asked
--
-- ARGV pairs: task id, fence token of this worker's claim; then the time (ms) as the last value.
-- Returns the number of tasks handed back (a stale fence is skipped: someone else owns it).
--!include includes/ready_score.lua
--!include includes/promote_due.lua
local leased, ready, wake, meta, prefix, idprefix, events =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local released = 0
for i = 1, #ARGV - 1, 2 do
  local id = ARGV[i]
  local key = prefix .. id
  if redis.call('HGET', key, 'fence') == ARGV[i + 1] and redis.call('ZSCORE', leased, id) then
    local f = redis.call('HMGET', key, 'priority', 'seq')
    redis.call('HDEL', key, 'fence')
    redis.call('HINCRBY', key, 'attempts', -1)
    redis.call('ZREM', leased, id)
    if not finish_if_cancel_requested(key, idprefix .. id, events, id, ARGV[#ARGV]) then
      redis.call('HSET', key, 'status', 'queued', 'owner', '')
      make_ready(ready, meta, key, id, f[1], f[2])
      released = released + 1
    end
  end
end
if released > 0 then
  wake_workers(wake)
end
return released
