//! The publish script: one atomic step that assigns a topic's next sequences and appends the
//! events to its stream (one call for all the publishes of a topic that wait together).
//!
//! Stream entry ids are `{seq}-0`, so an id is its sequence: reading "after sequence K" is
//! `XREAD … {K}-0` and the history after K is `XRANGE … {K+1}-0 +`. Fields: `t` (Redis time in
//! ms, for the age bound), `b` (the encoded event without its id line), `k` (conflation key, if
//! any), `x` (present on the terminal event), `i` (the topic's incarnation).
//!
//! # Incarnations
//!
//! Every entry carries the topic's incarnation, the first part of its SSE ids. The script takes
//! it from the topic's newest entry; when the stream is gone (a new topic, a topic that expired,
//! or a Redis that lost its data) it uses the candidate the publishing node drew, so a new life
//! of the topic gets a new incarnation and a client's id from the old life is answered with a
//! `gap`, never resumed silently at the wrong place.

use redis::Value;
use sse_core::hub::Incarnation;

/// Publishes one or more events of ONE topic, in order, as if each were a call of its own (the
/// script is atomic, so the sequences of one call are consecutive).
///
/// KEYS: seq, fin, log. ARGV: max_len, max_age_ms, idle_ttl_ms, finished_ttl_ms,
/// candidate incarnation, then six per event: body, key, terminal, must_exist, seq_in_body,
/// has_key.
///
/// Returns one answer per event, in order: the sequence (> 0), -1 when the topic is finished
/// (also for the events after a terminal one in the same call), -2 when it must exist and does
/// not, or an error message (a string) when Redis refused that event's writes. Each event's
/// writes are protected (`pcall`), so an event stored is never reported as failed because a
/// later one of the same call failed.
pub(crate) const PUBLISH: &str = r#"
local max_len = tonumber(ARGV[1])
local max_age = tonumber(ARGV[2])
local idle_ttl = tonumber(ARGV[3])
local fin_ttl = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last_id = nil
local check_age = false
local finished = false
local inc = nil
-- The topic's incarnation: its newest entry's, else the publishing node's candidate.
local function incarnation()
  if inc ~= nil then return inc end
  local top = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
  if top[1] then
    local f = top[1][2]
    for j = 1, #f, 2 do
      if f[j] == 'i' then inc = f[j + 1] end
    end
  end
  if inc == nil then inc = ARGV[5] end
  return inc
end
local function one(base)
  if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
  if ARGV[base + 3] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
  incarnation()
  local seq = redis.call('INCR', KEYS[1])
  if seq == 1 and redis.call('EXISTS', KEYS[3]) == 1 then
    -- The counter was lost but not the stream: continue after its newest entry.
    local top = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
    if top[1] then
      seq = tonumber(string.match(top[1][1], '^(%d+)')) + 1
      redis.call('SET', KEYS[1], seq)
    end
  end
  local sid = string.format('%d', seq)
  local id = sid .. '-0'
  local body = ARGV[base]
  if ARGV[base + 4] == '1' then
    body = (string.gsub(body, '18446744073709551557', sid))
  end
  local cmd = {'XADD', KEYS[3]}
  if max_len > 0 then
    cmd[#cmd + 1] = 'MAXLEN'
    cmd[#cmd + 1] = '~'
    cmd[#cmd + 1] = ARGV[1]
  end
  cmd[#cmd + 1] = id
  cmd[#cmd + 1] = 't'
  cmd[#cmd + 1] = now
  cmd[#cmd + 1] = 'b'
  cmd[#cmd + 1] = body
  cmd[#cmd + 1] = 'i'
  cmd[#cmd + 1] = incarnation()
  if ARGV[base + 5] == '1' then
    cmd[#cmd + 1] = 'k'
    cmd[#cmd + 1] = ARGV[base + 1]
  end
  local terminal = ARGV[base + 2] == '1'
  if terminal then
    cmd[#cmd + 1] = 'x'
    cmd[#cmd + 1] = '1'
  end
  redis.call(unpack(cmd))
  last_id = id
  -- The age bound is checked every 16 publishes (and on the terminal one), once per call: cheap,
  -- and late by at most 15 events.
  if seq % 16 == 1 or terminal then check_age = true end
  if terminal then
    finished = true
    redis.call('SET', KEYS[2], sid, 'PX', fin_ttl)
    redis.call('PEXPIRE', KEYS[1], fin_ttl)
    redis.call('PEXPIRE', KEYS[3], fin_ttl)
  end
  return seq
end
local out = {}
for base = 6, #ARGV, 6 do
  local ok, r = pcall(one, base)
  if ok then
    out[#out + 1] = r
  elseif type(r) == 'table' and r.err then
    out[#out + 1] = tostring(r.err)
  else
    out[#out + 1] = tostring(r)
  end
end
if last_id ~= nil then
  pcall(function()
    if max_age > 0 and check_age then
      local cutoff = now - max_age
      for _ = 1, 8 do
        local first = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)[1]
        if first == nil or first[1] == last_id or tonumber(first[2][2]) >= cutoff then break end
        local drop = nil
        local batch = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 64)
        for _, e in ipairs(batch) do
          if e[1] == last_id or tonumber(e[2][2]) >= cutoff then break end
          drop = e[1]
        end
        if drop == nil then break end
        redis.call('XTRIM', KEYS[3], 'MINID', string.match(drop, '^(%d+)') .. '-1')
      end
    end
    if not finished and idle_ttl > 0 then
      redis.call('PEXPIRE', KEYS[1], ARGV[3])
      redis.call('PEXPIRE', KEYS[3], ARGV[3])
    end
  end)
end
return out
"#;

/// One stream entry, parsed.
#[derive(Debug)]
pub(crate) struct RawEntry {
    pub(crate) seq: u64,
    pub(crate) body: Vec<u8>,
    pub(crate) key: Option<String>,
    pub(crate) terminal: bool,
    pub(crate) incarnation: Incarnation,
}

/// The incarnation of entries written before entries carried one: the same on every node.
fn legacy_incarnation() -> Incarnation {
    Incarnation::parse("legacy").unwrap_or_default()
}

impl RawEntry {
    pub(crate) fn injected(&self) -> sse_core::hub::Injected<'_> {
        sse_core::hub::Injected {
            incarnation: self.incarnation,
            seq: self.seq,
            body: &self.body,
            key: self.key.as_deref(),
            terminal: self.terminal,
        }
    }
}

pub(crate) fn bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::VerbatimString { text, .. } => Some(text.into_bytes()),
        _ => None,
    }
}

/// `[id, [field, value, …]]` → an entry (`None` if malformed).
pub(crate) fn parse_entry(v: Value) -> Option<RawEntry> {
    let Value::Array(parts) = v else { return None };
    let mut parts = parts.into_iter();
    let id = bytes(parts.next()?)?;
    let seq: u64 = std::str::from_utf8(id.split(|&b| b == b'-').next()?)
        .ok()?
        .parse()
        .ok()?;
    let fields = match parts.next()? {
        Value::Array(f) => f,
        Value::Map(m) => m.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => return None,
    };
    let mut entry = RawEntry {
        seq,
        body: Vec::new(),
        key: None,
        terminal: false,
        incarnation: legacy_incarnation(),
    };
    let mut it = fields.into_iter();
    while let (Some(f), Some(v)) = (it.next(), it.next()) {
        let f = bytes(f)?;
        match &f[..] {
            b"b" => entry.body = bytes(v)?,
            b"k" => entry.key = Some(String::from_utf8(bytes(v)?).ok()?),
            b"x" => entry.terminal = true,
            b"i" => {
                let text = String::from_utf8(bytes(v)?).ok()?;
                entry.incarnation = Incarnation::parse(&text)?;
            }
            _ => {}
        }
    }
    Some(entry)
}

/// An `XRANGE` reply → entries in order.
pub(crate) fn parse_entries(v: Value) -> Vec<RawEntry> {
    match v {
        Value::Array(items) => items.into_iter().filter_map(parse_entry).collect(),
        _ => Vec::new(),
    }
}

/// An `XREAD` reply → `(stream key, entries)` per stream (RESP2 array or RESP3 map).
pub(crate) fn parse_xread(v: Value) -> Vec<(Vec<u8>, Vec<RawEntry>)> {
    let pairs: Vec<(Value, Value)> = match v {
        Value::Map(m) => m,
        Value::Array(streams) => streams
            .into_iter()
            .filter_map(|s| match s {
                Value::Array(kv) => {
                    let mut kv = kv.into_iter();
                    Some((kv.next()?, kv.next()?))
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    pairs
        .into_iter()
        .filter_map(|(k, entries)| Some((bytes(k)?, parse_entries(entries))))
        .collect()
}
