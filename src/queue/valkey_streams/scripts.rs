//! The Lua scripts of the valkey_streams design: each runs atomically on the server, so
//! what one script does is never half done.
//!
//! Keys beside the stream `S` (all share its hash tag, so they sit on its cluster slot,
//! and one script touches one slot):
//! `S:seq` (hash: `next`, the first sequence number not handed out, `base`, the first
//! since the last reset, and `run`, the server's run_id when it last allocated), `S:produced` and `S:done` (bitmaps by `seq − base`: jobs added,
//! and jobs completed), `S:requeued` and `S:completed` (counters). On a cluster, numbers
//! are handed out by the first stream's counter alone; the others' hashes hold only
//! `base`.

/// Makes sure the counter exists (seeded from the clock: numbers stay unique even after a
/// server without persistence restarts), hands out ARGV[1] numbers, returns the first.
///
/// A server that restarted from disk may hold an older counter than the numbers it
/// handed out (a crash loses the last writes under `appendfsync everysec`), and a reused
/// number would hide a lost job behind a new one. So the first allocation after a
/// restart (a new `run_id`) skips 2^22 numbers, more than a second or two of the
/// fastest producer takes. The base and bitmaps stay: they were restored with the
/// counter, from the same file.
/// KEYS: seq hash. ARGV: n, fresh base.
pub const ALLOCATE: &str = r#"
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
if redis.call('HSETNX', KEYS[1], 'next', ARGV[2]) == 1 then
  redis.call('HSET', KEYS[1], 'base', ARGV[2], 'run', run)
elseif redis.call('HGET', KEYS[1], 'run') ~= run then
  redis.call('HINCRBY', KEYS[1], 'next', 4194304)
  redis.call('HSET', KEYS[1], 'run', run)
end
return redis.call('HINCRBY', KEYS[1], 'next', ARGV[1]) - tonumber(ARGV[1])
"#;

/// Adds each job whose seq was never added: a retry after an error of unknown outcome
/// adds nothing twice. The base is read here, never cached by a client, so a reset or a
/// restart between calls cannot shift the bits. KEYS: stream, produced bitmap, seq hash.
/// ARGV: payload, then seq and intended time per job. Returns how many were added.
pub const ENQUEUE: &str = r#"
local base, n = tonumber(redis.call('HGET', KEYS[3], 'base')), 0
for i = 2, #ARGV, 2 do
  local fresh = true
  if base then
    local off = tonumber(ARGV[i]) - base
    if off >= 0 and off < 4294967296 then fresh = redis.call('SETBIT', KEYS[2], off, 1) == 0 end
  end
  if fresh then
    redis.call('XADD', KEYS[1], '*', 's', ARGV[i], 't', ARGV[i + 1], 'a', 0, 'p', ARGV[1])
    n = n + 1
  end
end
return n
"#;

/// Completes what this consumer still holds: XACK answers 1 only for an entry still
/// pending to it. Those are deleted, marked done and counted; the others (the reaper
/// took them after the lease ran out) are returned by seq as late.
/// KEYS: stream, completed counter, done bitmap, seq hash. ARGV: group, then id and seq.
pub const COMPLETE: &str = r#"
local base, n, late = tonumber(redis.call('HGET', KEYS[4], 'base')), 0, {}
for i = 2, #ARGV, 2 do
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    redis.call('XDEL', KEYS[1], ARGV[i])
    if base then
      local off = tonumber(ARGV[i + 1]) - base
      if off >= 0 and off < 4294967296 then redis.call('SETBIT', KEYS[3], off, 1) end
    end
    n = n + 1
  else
    late[#late + 1] = ARGV[i + 1]
  end
end
if n > 0 then redis.call('INCRBY', KEYS[2], n) end
return late
"#;

/// Re-adds expired entries with their attempts raised, then acks and deletes the old ones.
/// KEYS: stream, requeue counter. ARGV: group, reaper consumer, min idle ms, count.
pub const REAP: &str = r#"
local res = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4])
local n = 0
for _, e in ipairs(res[2]) do
  if e and e[2] then
    local f, v = e[2], {}
    for i = 1, #f, 2 do v[f[i]] = f[i + 1] end
    redis.call('XADD', KEYS[1], '*', 's', v['s'], 't', v['t'], 'a', (tonumber(v['a']) or 0) + 1, 'p', v['p'])
    redis.call('XACK', KEYS[1], ARGV[1], e[1])
    redis.call('XDEL', KEYS[1], e[1])
    n = n + 1
  end
end
if n > 0 then redis.call('INCRBY', KEYS[2], n) end
return n
"#;

/// Empties the queue: the stream and its records go, the counter stays (numbers stay
/// unique) and the bitmaps count from its current value. KEYS: stream, seq hash,
/// produced, done, requeued, completed. ARGV: on a cluster's other streams, whose
/// numbers come from the first stream's counter, that counter's value.
pub const RESET: &str = r#"
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
local nxt = ARGV[1] or redis.call('HGET', KEYS[2], 'next')
if nxt then redis.call('HSET', KEYS[2], 'base', nxt) end
return 1
"#;

/// The audit's self-check, not the design: deletes the newest entry the group has not
/// delivered yet (newer than its last-delivered-id; in one script, so no worker takes
/// it meanwhile), as a bug or an operator would; returns its seq, or -1 when none waits.
/// KEYS: stream. ARGV: group.
pub const SABOTAGE: &str = r#"
local last
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, delivered
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] end
    if g[i] == 'last-delivered-id' then delivered = g[i + 1] end
  end
  if name == ARGV[1] then last = delivered end
end
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
if not newest then return -1 end
local function parts(id)
  local ms, n = string.match(id, '(%d+)-(%d+)')
  return tonumber(ms), tonumber(n)
end
if last then
  local ems, en = parts(newest[1])
  local lms, ln = parts(last)
  if ems < lms or (ems == lms and en <= ln) then return -1 end
end
local seq = -1
for i = 1, #newest[2], 2 do
  if newest[2][i] == 's' then seq = tonumber(newest[2][i + 1]) end
end
redis.call('XDEL', KEYS[1], newest[1])
return seq
"#;
