-- Move scheduled tasks whose due time has come (score <= now) into the ready set, at most
-- `limit` per call; each gets a fresh sequence number so due tasks run in due order.
local function promote_due(scheduled, ready, meta, prefix, now, limit)
  local due = redis.call('ZRANGEBYSCORE', scheduled, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(due) do
    local key = prefix .. id
    local priority = redis.call('HGET', key, 'priority')
    if priority then
      redis.call('HDEL', key, 'seq')
      make_ready(ready, meta, key, id, priority, nil)
    end
    redis.call('ZREM', scheduled, id)
  end
  return #due
end

-- A task whose cancellation was requested while it ran is not run again: it ends CANCELLED
-- (the request stored the retention to apply, in ms).
local function finish_if_cancel_requested(key, idkey, events, id, now)
  local cancel = redis.call('HGET', key, 'cancel')
  if not cancel then
    return false
  end
  redis.call('HSET', key, 'status', 'cancelled', 'completed', now, 'owner', '')
  redis.call('HDEL', key, 'cancel')
  redis.call('PEXPIRE', key, tonumber(cancel))
  redis.call('PEXPIRE', idkey, tonumber(cancel))
  redis.call('PUBLISH', events, 'cancelled ' .. id)
  return true
end

-- Hand expired leases (their process died or hung) back to the ready set at their old place.
-- Bumping the fence makes the old run unable to renew, complete or fail the task.
local function reclaim_expired(leased, ready, meta, prefix, idprefix, events, now, limit)
  local expired = redis.call('ZRANGEBYSCORE', leased, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(expired) do
    local key = prefix .. id
    local f = redis.call('HMGET', key, 'priority', 'seq')
    if f[1] then
      redis.call('HINCRBY', key, 'fence', 1)
      redis.call('HINCRBY', key, 'reclaims', 1)
      if not finish_if_cancel_requested(key, idprefix .. id, events, id, now) then
        redis.call('HSET', key, 'status', 'queued', 'owner', '')
        make_ready(ready, meta, key, id, f[1], f[2])
      end
    end
    redis.call('ZREM', leased, id)
  end
  return #expired
end
