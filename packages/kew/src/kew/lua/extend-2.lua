-- extend: renew the leases of the tasks a worker is running (one call for all of them).
--
-- KEYS[1] leased  ZSET  claimed ids by lease expiry (ms)
-- KEYS[2] prefix  task key prefix (carries the queue's hash tag)
--
-- ARGV[1] new lease expiry (ms)
-- ARGV[2..] pairs: task id, fence token of this worker's claim
--
-- Returns {lost ids, cancel-requested ids}: a lost lease (reclaimed, deleted) means the run
-- must stop without writing anything; a cancel request means the run must stop and confirm
-- with the cancel script. Leases of cancel-requested runs are still renewed.
local leased, prefix = KEYS[1], KEYS[2]
local expiry = tonumber(ARGV[1])
local lost, cancel = {}, {}
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  local f = redis.call('HMGET', prefix .. id, 'fence', 'cancel')
  if f[1] == ARGV[i + 1] and redis.call('ZSCORE', leased, id) then
    redis.call('ZADD', leased, 'XX', expiry, id)
    if f[2] then
      cancel[#cancel + 1] = id
    end
  else
    lost[#lost + 1] = id
  end
end
return {lost, cancel}
