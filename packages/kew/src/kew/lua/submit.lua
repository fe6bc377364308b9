-- submit: enqueue one or more tasks into one queue (variadic; one round trip).
--
-- KEYS[1] base       the queue's key prefix "<ns>:{<queue>}:" (carries its hash tag); this hot
--                    path builds its keys from it (fewer arguments to send per submit):
--                    ready (ZSET by priority, sequence), scheduled (ZSET by due ms), wake
--                    (LIST), meta (HASH: sequence counter), task:<id> (HASH), staging:<batch>
--                    (LIST of ids written by earlier chunks of a batch)
-- KEYS[2] idprefix   prefix of the namespace's task-id keys: an id is taken while any queue of
--                    the namespace holds a record of it (the key expires with the record)
--
-- ARGV[1] now (ms)   ARGV[2] max_size   ARGV[3] mode   ARGV[4] staging ttl (ms)
-- ARGV[5] queue name   ARGV[6] batch id (names the staging list; '-' outside batches)
-- ARGV[7..] per task, 6 values: id, type, priority, due (ms, 0 = ready now), func, args
--
-- mode 'each'  : every task on its own; returns one code per task (OK | DUPLICATE | QUEUE_FULL)
-- mode 'stage' : all-or-nothing chunk of a larger batch: hashes are written but not enqueued,
--                and expire after the staging ttl unless a later 'commit' publishes them
-- mode 'commit': all-or-nothing: this chunk and every staged one are enqueued, or none is and
--                the staged hashes are deleted
-- 'stage' and 'commit' return {code, index of the offending task (1-based), 0 when none}.
--
-- Cost per task: one SET (id key), one HSET and a share of one ZADD (members are added in
-- slices of up to 4000 per call); sequence numbers are reserved once per call.
--!include includes/codes.lua
--!include includes/ready_score.lua
--!include includes/task_hash.lua

local base, idprefix = KEYS[1], KEYS[2]
local ready, scheduled, wake, meta = base .. 'ready', base .. 'scheduled', base .. 'wake', base .. 'meta'
local prefix, staging = base .. 'task:', base .. 'staging:' .. ARGV[6]
local now = tonumber(ARGV[1])
local max_size = tonumber(ARGV[2])
local mode = ARGV[3]
local staging_ttl = tonumber(ARGV[4])
local queue = ARGV[5]
local FIRST, WIDTH = 7, 6
local count = (#ARGV - FIRST + 1) / WIDTH
local SLICE = 4000

-- ZADD members collected per set and sent in slices (fewer redis.call round trips in Lua).
local pending = {[ready] = {}, [scheduled] = {}}
local function zadd_later(set, score, id)
  local p = pending[set]
  p[#p + 1] = score
  p[#p + 1] = id
  if #p >= SLICE then
    redis.call('ZADD', set, unpack(p))
    pending[set] = {}
  end
end
local function zadd_flush()
  for set, p in pairs(pending) do
    if #p > 0 then
      redis.call('ZADD', set, unpack(p))
    end
  end
end

local seq_next = 0
local function next_seq()
  if seq_next == 0 then
    seq_next = redis.call('HINCRBY', meta, 'seq', count) - count + 1
  end
  seq_next = seq_next + 1
  return seq_next - 1
end

-- Write task i's HASH; when `publish`, also place it in ready or scheduled.
local function write_task(i, publish)
  local o = FIRST + (i - 1) * WIDTH
  local id, priority, due = ARGV[o], ARGV[o + 2], tonumber(ARGV[o + 3])
  local key = prefix .. id
  redis.call('SET', idprefix .. id, queue)
  local task_type, func, args = ARGV[o + 1], ARGV[o + 4], ARGV[o + 5]
  if publish and due <= now then
    local seq = next_seq()
    write_task_hash(key, id, queue, task_type, priority, now, func, args, 'seq', seq)
    zadd_later(ready, ready_score(priority, seq), id)
  else
    write_task_hash(key, id, queue, task_type, priority, now, func, args, 'due', due)
    if publish then
      zadd_later(scheduled, due, id)
    end
  end
  return id, key
end

local function size()
  return redis.call('ZCARD', ready) + redis.call('ZCARD', scheduled)
end

if mode == 'each' then
  local codes = {}
  local waiting = size()
  for i = 1, count do
    if redis.call('EXISTS', idprefix .. ARGV[FIRST + (i - 1) * WIDTH]) == 1 then
      codes[i] = DUPLICATE
    elseif waiting >= max_size then
      codes[i] = QUEUE_FULL
    else
      write_task(i, true)
      waiting = waiting + 1
      codes[i] = OK
    end
  end
  zadd_flush()
  wake_workers(wake)
  return codes
end

local function abort(code, index)
  for _, id in ipairs(redis.call('LRANGE', staging, 0, -1)) do
    redis.call('DEL', prefix .. id, idprefix .. id)
  end
  redis.call('DEL', staging)
  return {code, index}
end

-- all-or-nothing: check every id (one EXISTS per slice; per id only when one exists)
for first = 1, count, SLICE do
  local last = math.min(count, first + SLICE - 1)
  local keys = {}
  for i = first, last do
    keys[#keys + 1] = idprefix .. ARGV[FIRST + (i - 1) * WIDTH]
  end
  if redis.call('EXISTS', unpack(keys)) > 0 then
    for i = first, last do
      if redis.call('EXISTS', keys[i - first + 1]) == 1 then
        return abort(DUPLICATE, i)
      end
    end
  end
end
local staged = redis.call('LLEN', staging)
if size() + staged + count > max_size then
  return abort(QUEUE_FULL, 0)
end

if mode == 'stage' then
  local ids = {}
  for i = 1, count do
    local id, key = write_task(i, false)
    redis.call('PEXPIRE', key, staging_ttl)
    redis.call('PEXPIRE', idprefix .. id, staging_ttl)
    ids[#ids + 1] = id
    if #ids >= SLICE then
      redis.call('RPUSH', staging, unpack(ids))
      ids = {}
    end
  end
  if #ids > 0 then
    redis.call('RPUSH', staging, unpack(ids))
  end
  redis.call('PEXPIRE', staging, staging_ttl)
  return {OK, 0}
end

local staged_ids = redis.call('LRANGE', staging, 0, -1)
for _, id in ipairs(staged_ids) do
  if redis.call('EXISTS', prefix .. id) == 0 then
    return abort(NOT_FOUND, 0) -- a staged chunk outlived its ttl: publish nothing
  end
end
for _, id in ipairs(staged_ids) do
  local key = prefix .. id
  local f = redis.call('HMGET', key, 'priority', 'due')
  redis.call('PERSIST', key)
  redis.call('PERSIST', idprefix .. id)
  local due = tonumber(f[2])
  if due > now then
    zadd_later(scheduled, due, id)
  else
    local seq = redis.call('HINCRBY', meta, 'seq', 1)
    redis.call('HSET', key, 'seq', seq)
    zadd_later(ready, ready_score(f[1], seq), id)
  end
end
redis.call('DEL', staging)
for i = 1, count do
  write_task(i, true)
end
zadd_flush()
wake_workers(wake)
return {OK, 0}
