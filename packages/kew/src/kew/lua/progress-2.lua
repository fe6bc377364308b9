-- progress: a running task reports how far it got (shown by get_task_status).
--
-- KEYS[1] task    HASH  the task
-- KEYS[2] leased  ZSET  claimed ids
--
-- ARGV[1] task id  ARGV[2] fence of the reporting run  ARGV[3] progress (number)
-- ARGV[4] message
-- Returns OK, or LEASE_LOST when the run no longer owns the task (nothing written).
--!include includes/codes.lua
if redis.call('HGET', KEYS[1], 'fence') ~= ARGV[2] or not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return LEASE_LOST
end
redis.call('HSET', KEYS[1], 'progress', ARGV[3], 'progress_message', ARGV[4])
return OK
