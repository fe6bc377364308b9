-- enqueue: submit one task (the sequential hot path: straight-line, the fewest calls; submit.lua
-- takes many tasks per call and shares its checks and its HASH layout).
--
-- KEYS[1] base       the queue's key prefix "<ns>:{<queue>}:" (see submit.lua)
-- KEYS[2] idprefix   prefix of the task-id keys (see submit.lua)
--
-- ARGV[1] now (ms)   ARGV[2] max_size   ARGV[3] queue name
-- ARGV[4..9] the task: id, type, priority, due (ms, 0 = ready now), func, args
--
-- Returns OK, DUPLICATE (the id is taken; nothing written) or QUEUE_FULL (max_size tasks wait
-- in ready + scheduled; nothing written). The id is checked first, as in submit.lua.
-- Cost: SET NX (id check and claim in one), 2 ZCARD, HINCRBY (ready only), HSET, ZADD, LLEN.
--!include includes/codes.lua
--!include includes/ready_score.lua
--!include includes/task_hash.lua

local base, idkey = KEYS[1], KEYS[2] .. ARGV[4]
local queue = ARGV[3]
if not redis.call('SET', idkey, queue, 'NX') then
  return DUPLICATE
end
local ready, scheduled = base .. 'ready', base .. 'scheduled'
if redis.call('ZCARD', ready) + redis.call('ZCARD', scheduled) >= tonumber(ARGV[2]) then
  redis.call('DEL', idkey)
  return QUEUE_FULL
end
local now, id, priority, due = tonumber(ARGV[1]), ARGV[4], ARGV[6], tonumber(ARGV[7])
local key = base .. 'task:' .. id
if due <= now then
  local seq = redis.call('HINCRBY', base .. 'meta', 'seq', 1)
  write_task_hash(key, id, queue, ARGV[5], priority, now, ARGV[8], ARGV[9], 'seq', seq)
  redis.call('ZADD', ready, ready_score(priority, seq), id)
else
  write_task_hash(key, id, queue, ARGV[5], priority, now, ARGV[8], ARGV[9], 'due', due)
  redis.call('ZADD', scheduled, due, id)
end
wake_workers(base .. 'wake')
return OK
