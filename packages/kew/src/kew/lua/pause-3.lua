-- pause: pause or resume claiming from a queue in every process (submissions still go in).
--
-- KEYS[1] meta   HASH  holds the 'paused' flag
-- KEYS[2] wake   LIST  wake-up token: on resume, idle workers claim at once
-- KEYS[3] ready  ZSET  ready ids (wake only when some wait)
--
-- ARGV[1] '1' to pause, '0' to resume.
-- Returns 1 when the flag changed, 0 when the queue already was in that state.
--!include includes/ready_score.lua
local meta, wake, ready = KEYS[1], KEYS[2], KEYS[3]
if ARGV[1] == '1' then
  return redis.call('HSET', meta, 'paused', '1') == 1 and 1 or 0
end
local changed = redis.call('HDEL', meta, 'paused')
if changed == 1 and redis.call('ZCARD', ready) > 0 then
  wake_workers(wake)
end
return changed
