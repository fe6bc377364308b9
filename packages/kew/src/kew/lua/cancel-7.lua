-- cancel: cancel a task wherever it is.
--
-- KEYS[1] task       HASH  the task
-- KEYS[2] ready      ZSET  ready ids
-- KEYS[3] scheduled  ZSET  deferred / retry-waiting ids
-- KEYS[4] leased     ZSET  claimed ids
-- KEYS[5] events     channel: "cancelled <id>"
-- KEYS[6] wake       LIST  wake-up token (a cancelled running task frees a fleet-wide slot)
-- KEYS[7] idkey      STRING the task's namespace-wide id key (expires with the record)
--
-- ARGV[1] task id  ARGV[2] now (ms)  ARGV[3] retention (ms)
-- ARGV[4] fence: empty for a request from anyone; the owner's fence to confirm that its run
--         stopped (then the lease is released)
--
-- Returns {code, what}: NOT_FOUND; or OK with what = 'cancelled' (it was waiting, or its run
-- confirmed), 'requested' (it is running: its owner cancels it at its next lease renewal), or
-- 'finished' when it had already ended (completed, failed or cancelled): nothing was changed.
-- LEASE_LOST when the fence given is stale.
--!include includes/codes.lua
--!include includes/ready_score.lua
local task, ready, scheduled, leased, events, wake, idkey =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local id, now, retention, fence = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]

local status = redis.call('HGET', task, 'status')
if not status then
  return {NOT_FOUND, ''}
end

local function finish()
  redis.call('HSET', task, 'status', 'cancelled', 'completed', now, 'owner', '')
  redis.call('HDEL', task, 'cancel')
  redis.call('PEXPIRE', task, retention)
  redis.call('PEXPIRE', idkey, retention)
  redis.call('PUBLISH', events, 'cancelled ' .. id)
  return {OK, 'cancelled'}
end

if fence ~= '' then
  if redis.call('HGET', task, 'fence') ~= fence or not redis.call('ZSCORE', leased, id) then
    return {LEASE_LOST, ''}
  end
  redis.call('ZREM', leased, id)
  if redis.call('ZCARD', ready) > 0 then
    wake_workers(wake)
  end
  return finish()
end
if status == 'queued' or status == 'retry' then
  redis.call('ZREM', ready, id)
  redis.call('ZREM', scheduled, id)
  return finish()
end
if status == 'processing' then
  redis.call('HSET', task, 'cancel', retention)
  return {OK, 'requested'}
end
return {OK, 'finished'}
