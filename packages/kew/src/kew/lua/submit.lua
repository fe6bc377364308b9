-- submit: enqueue one or more tasks into one queue (variadic; one round trip).
--
-- KEYS[1] base       the queue's key prefix "<ns>:{<queue>}:" (carries its hash tag); this hot
--                    path builds its keys from it (fewer arguments to send per submit):
--                    ready (ZSET by priority, sequence), scheduled (ZSET by due ms), wake
--                    (LIST), meta (HASH: sequence counter), task:<id> (HASH), staging:<batch>
--                    (LIST: the rows of a batch's earlier chunks, 6 values per task)
-- KEYS[2] idprefix   prefix of the namespace's task-id keys: an id is taken while any queue of
--                    the namespace holds a record of it (the key expires with the record)
--
-- ARGV[1] now (ms)   ARGV[2] max_size   ARGV[3] mode   ARGV[4] staging ttl (ms)
-- ARGV[5] queue name   ARGV[6] batch id (names the staging list; '-' outside batches)
-- ARGV[7] tasks of this batch staged by earlier calls (0 outside batches)
-- ARGV[8..] per task, 6 values: id, type, priority, due (ms, 0 = ready now), func, args
--
-- mode 'each'  : every task on its own; returns one code per task (OK | DUPLICATE | QUEUE_FULL)
-- mode 'stage' : a chunk of a larger all-or-nothing batch: its rows are appended to the staging
--                list (nothing else is written; the list expires after the staging ttl) once
--                its ids are free and the batch so far fits under max_size
-- mode 'commit': the last chunk: every staged row and this chunk's are enqueued, or none is
--                (the staging list is deleted either way)
-- 'stage' and 'commit' return {code, index of the offending task in the whole batch (1-based),
-- 0 when none}; NOT_FOUND when the staging list does not hold ARGV[7] tasks (it expired). A
-- chunk staged twice (a retried call) is staged once: the repeat answers OK; a commit or an
-- abort is remembered (staging:<batch>:outcome) for the staging ttl and answered again.
--
-- Cost per task: one SET (id key), one HSET and a share of one ZADD (members are added in
-- slices of up to 2000 per call); ids are checked with one EXISTS per slice; sequence numbers
-- are reserved once per call. A batch is written by its commit, one script run: Redis is busy
-- for about 7 us per task of the batch there (staged chunks cost a share of one RPUSH each).
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
local staged = tonumber(ARGV[7])
local FIRST, WIDTH = 8, 6
local count = (#ARGV - FIRST + 1) / WIDTH
local SLICE = 4000 -- values per unpack (Lua's C stack holds about 8000)

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

-- Sequence numbers: `n` reserved with one HINCRBY on first use (unused ones leave gaps).
local seq_next, seq_reserve = 0, count
local function next_seq()
  if seq_next == 0 then
    seq_next = redis.call('HINCRBY', meta, 'seq', seq_reserve) - seq_reserve + 1
  end
  seq_next = seq_next + 1
  return seq_next - 1
end

-- Write the task whose 6 values start at v[o]: its id key, its HASH, its place in ready or
-- scheduled.
local function write_task(v, o)
  local id, task_type, priority, due = v[o], v[o + 1], v[o + 2], tonumber(v[o + 3])
  local func, args = v[o + 4], v[o + 5]
  local key = prefix .. id
  redis.call('SET', idprefix .. id, queue)
  if due <= now then
    local seq = next_seq()
    write_task_hash(key, id, queue, task_type, priority, now, func, args, 'seq', seq)
    zadd_later(ready, ready_score(priority, seq), id)
  else
    write_task_hash(key, id, queue, task_type, priority, now, func, args, 'due', due)
    zadd_later(scheduled, due, id)
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
    if redis.call('EXISTS', idprefix .. ARGV[o]) == 1 then
      codes[i] = DUPLICATE
    elseif waiting >= max_size then
      codes[i] = QUEUE_FULL
    else
      write_task(ARGV, o)
      waiting = waiting + 1
      codes[i] = OK
    end
  end
  zadd_flush()
  wake_workers(wake)
  return codes
end

-- all-or-nothing ('stage', 'commit') ------------------------------------------------------------

-- A batch's final answer is kept for the staging ttl: a call sent again after its reply was
-- lost (a committed batch, an aborted one) gets the same answer instead of a misleading one
-- (its own ids reported taken, its staged rows reported expired).
local outcome = staging .. ':outcome'
local function finish(code, index)
  redis.call('DEL', staging)
  redis.call('SET', outcome, code .. ':' .. index, 'PX', staging_ttl)
  return {code, index}
end

local prior = redis.call('GET', outcome)
if prior then
  local code, index = string.match(prior, '^(%d+):(%d+)$')
  return {tonumber(code), tonumber(index)}
end

-- The first task among the rows of v from index o_first to index o_last (6 values a row) whose
-- id is taken in Redis or (with `seen`) earlier in the batch; returns its position among them
-- (1-based) or nil. One EXISTS per slice of ids; per id only when a slice has a hit.
local function first_taken(v, o_first, o_last, seen)
  local i = 0
  for o = o_first, o_last, WIDTH * SLICE do
    local keys, ids = {}, {}
    for p = o, math.min(o_last, o + WIDTH * (SLICE - 1)), WIDTH do
      ids[#ids + 1] = v[p]
      keys[#keys + 1] = idprefix .. v[p]
    end
    local hit = redis.call('EXISTS', unpack(keys)) > 0
    for k = 1, #ids do
      if (hit and redis.call('EXISTS', keys[k]) == 1) or (seen and seen[ids[k]]) then
        return i + k
      end
      if seen then
        seen[ids[k]] = true
      end
    end
    i = i + #ids
  end
  return nil
end

local held = redis.call('LLEN', staging)
if mode == 'stage' and held == (staged + count) * WIDTH and count > 0
    and redis.call('LINDEX', staging, staged * WIDTH) == ARGV[FIRST] then
  return {OK, 0} -- this chunk again (a call retried after its reply was lost): staged already
end
if held ~= staged * WIDTH then
  return finish(NOT_FOUND, 0) -- an earlier chunk's rows outlived the staging ttl
end

if mode == 'stage' then
  local bad = first_taken(ARGV, FIRST, #ARGV, nil)
  if bad then
    return finish(DUPLICATE, staged + bad)
  end
  if size() + staged + count > max_size then
    return finish(QUEUE_FULL, 0)
  end
  for o = FIRST, #ARGV, SLICE do
    redis.call('RPUSH', staging, unpack(ARGV, o, math.min(#ARGV, o + SLICE - 1)))
  end
  redis.call('PEXPIRE', staging, staging_ttl)
  return {OK, 0}
end

-- commit: the staged rows, then this chunk's
local rows = staged > 0 and redis.call('LRANGE', staging, 0, -1) or {}
for o = FIRST, #ARGV do
  rows[#rows + 1] = ARGV[o]
end
local total = #rows / WIDTH
local bad = first_taken(rows, 1, #rows, {})
if bad then
  return finish(DUPLICATE, bad)
end
if size() + total > max_size then
  return finish(QUEUE_FULL, 0)
end
seq_reserve = total
for o = 1, #rows, WIDTH do
  write_task(rows, o)
end
zadd_flush()
wake_workers(wake)
return finish(OK, 0)
