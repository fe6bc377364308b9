-- extend: renew the leases of the tasks a worker is running (one call for all of them).
--
-- KEYS[1] leased  ZSET  claimed ids by lease expiry (ms)
-- KEYS[2] prefix  task key prefix (carries the queue's hash tag)
--
-- ARGV[1] new lease expiry (ms)
-- ARGV[2..] pairs: task id, fence token of this worker's claim
--
-- Returns the ids whose lease was lost (reclaimed, cancelled or deleted): their runs must stop.
local leased, prefix = KEYS[1], KEYS[2]
local expiry = tonumber(ARGV[1])
local lost = {}
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  local fence = redis.call('HGET', prefix .. id, 'fence')
  if fence == ARGV[i + 1] and redis.call('ZSCORE', leased, id) then
    redis.call('ZADD', leased, 'XX', expiry, id)
  else
    lost[#lost + 1] = id
  end
end
return lost
