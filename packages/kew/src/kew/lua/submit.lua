-- submit: enqueue one or more tasks into one queue (variadic; one round trip).
--
-- KEYS[1] ready      ZSET  ready ids by (priority, sequence)
-- KEYS[2] scheduled  ZSET  deferred ids by due time (ms)
-- KEYS[3] wake       LIST  wake-up token for idle workers
-- KEYS[4] meta       HASH  sequence counter
-- KEYS[5] prefix     task key prefix (not a key itself; carries the queue's hash tag)
-- KEYS[6] staging    LIST  ids written by earlier chunks of this batch (mode 'stage'/'commit')
--
-- ARGV[1] now (ms)   ARGV[2] max_size   ARGV[3] mode   ARGV[4] staging ttl (ms)
-- ARGV[5] queue name
-- ARGV[6..] per task, 6 values: id, type, priority, due (ms, 0 = ready now), func, args
--
-- mode 'each'  : every task on its own; returns one code per task (OK | DUPLICATE | QUEUE_FULL)
-- mode 'stage' : all-or-nothing chunk of a larger batch: hashes are written but not enqueued,
--                and expire after the staging ttl unless a later 'commit' publishes them
-- mode 'commit': all-or-nothing: this chunk and every staged one are enqueued, or none is and
--                the staged hashes are deleted
-- 'stage' and 'commit' return {code, index of the offending task (1-based), 0 when none}.
--!include includes/codes.lua
--!include includes/ready_score.lua

local ready, scheduled, wake, meta, prefix, staging = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local now = tonumber(ARGV[1])
local max_size = tonumber(ARGV[2])
local mode = ARGV[3]
local staging_ttl = tonumber(ARGV[4])
local queue = ARGV[5]
local FIRST, WIDTH = 6, 6
local count = (#ARGV - FIRST + 1) / WIDTH

local function write_task(i, status)
  local o = FIRST + (i - 1) * WIDTH
  local id = ARGV[o]
  local key = prefix .. id
  redis.call('HSET', key, 'id', id, 'queue', queue, 'type', ARGV[o + 1], 'priority', ARGV[o + 2],
    'status', status, 'queued', now, 'due', ARGV[o + 3], 'func', ARGV[o + 4], 'args', ARGV[o + 5],
    'retries', 0, 'attempts', 0, 'fence', 0)
  return id, key
end

local function enqueue(id, key, priority, due)
  if due > now then
    redis.call('ZADD', scheduled, due, id)
  else
    make_ready(ready, meta, key, id, priority, nil)
  end
end

local function size()
  return redis.call('ZCARD', ready) + redis.call('ZCARD', scheduled)
end

if mode == 'each' then
  local codes = {}
  local waiting = size()
  for i = 1, count do
    local o = FIRST + (i - 1) * WIDTH
    if redis.call('EXISTS', prefix .. ARGV[o]) == 1 then
      codes[i] = DUPLICATE
    elseif waiting >= max_size then
      codes[i] = QUEUE_FULL
    else
      local id, key = write_task(i, 'queued')
      enqueue(id, key, ARGV[o + 2], tonumber(ARGV[o + 3]))
      waiting = waiting + 1
      codes[i] = OK
    end
  end
  wake_workers(wake)
  return codes
end

local function abort(code, index)
  for _, id in ipairs(redis.call('LRANGE', staging, 0, -1)) do
    redis.call('DEL', prefix .. id)
  end
  redis.call('DEL', staging)
  return {code, index}
end

for i = 1, count do
  if redis.call('EXISTS', prefix .. ARGV[FIRST + (i - 1) * WIDTH]) == 1 then
    return abort(DUPLICATE, i)
  end
end
local staged = redis.call('LLEN', staging)
if size() + staged + count > max_size then
  return abort(QUEUE_FULL, 0)
end

if mode == 'stage' then
  for i = 1, count do
    local id, key = write_task(i, 'queued')
    redis.call('PEXPIRE', key, staging_ttl)
    redis.call('RPUSH', staging, id)
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
  enqueue(id, key, f[1], tonumber(f[2]))
end
redis.call('DEL', staging)
for i = 1, count do
  local o = FIRST + (i - 1) * WIDTH
  local id, key = write_task(i, 'queued')
  enqueue(id, key, ARGV[o + 2], tonumber(ARGV[o + 3]))
end
wake_workers(wake)
return {OK, 0}
