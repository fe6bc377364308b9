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
-- Dropping the fence makes the old run unable to renew, complete or fail the task. A task whose
-- lease expired more than `max_reclaims` times (0 = no limit) keeps killing or hanging its
-- processes: it fails for good into the dead letters instead of crash-looping the fleet.
local function reclaim_expired(leased, ready, meta, prefix, idprefix, events, now, limit, max_reclaims, dead, dead_ms)
  local expired = redis.call('ZRANGEBYSCORE', leased, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(expired) do
    local key = prefix .. id
    local f = redis.call('HMGET', key, 'priority', 'seq')
    if f[1] then
      redis.call('HDEL', key, 'fence')
      local reclaims = redis.call('HINCRBY', key, 'reclaims', 1)
      if finish_if_cancel_requested(key, idprefix .. id, events, id, now) then
        -- cancelled, not run again
      elseif max_reclaims > 0 and reclaims > max_reclaims then
        local err = 'lease expired ' .. reclaims .. ' times: the task killed or hung its process'
        local errors = redis.call('HGET', key, 'errors')
        errors = errors and (errors .. '\30' .. err) or err
        redis.call('HSET', key, 'status', 'failed', 'completed', now, 'owner', '', 'error', err,
          'errors', errors)
        redis.call('PEXPIRE', key, dead_ms)
        redis.call('PEXPIRE', idprefix .. id, dead_ms)
        redis.call('ZADD', dead, now, id)
        redis.call('PUBLISH', events, 'failed ' .. id)
      else
        redis.call('HSET', key, 'status', 'queued', 'owner', '')
        make_ready(ready, meta, key, id, f[1], f[2])
      end
    end
    redis.call('ZREM', leased, id)
  end
  return #expired
end
