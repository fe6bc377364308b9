-- purge_dead: delete dead letters (their records and their place in the dead-letter set).
--
-- KEYS[1] dead    ZSET  dead letters by failure time (ms)
-- KEYS[2] prefix  task key prefix (carries the queue's hash tag)
-- KEYS[3] idprefix  prefix of the namespace's task-id keys
--
-- ARGV[1] cutoff (ms): delete those that failed at or before it; '+inf' for all.
-- Returns the number of dead letters deleted.
local dead, prefix, idprefix = KEYS[1], KEYS[2], KEYS[3]
local ids = redis.call('ZRANGEBYSCORE', dead, '-inf', ARGV[1])
for _, id in ipairs(ids) do
  local key = prefix .. id
  if redis.call('HGET', key, 'status') == 'failed' then
    redis.call('DEL', key, idprefix .. id)
  end
  redis.call('ZREM', dead, id)
end
return #ids
