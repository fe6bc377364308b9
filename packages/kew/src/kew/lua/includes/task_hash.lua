-- Write a new task's HASH: the fields every submit path stores, plus one more field, `seq` for a
-- task placed in the ready set (its FIFO sequence) or `due` for a deferred one (its due time).
local function write_task_hash(key, id, queue, task_type, priority, now, func, args, field, value)
  redis.call('HSET', key, 'id', id, 'queue', queue, 'type', task_type, 'priority', priority,
    'status', 'queued', 'queued', now, 'func', func, 'args', args, field, value)
end
