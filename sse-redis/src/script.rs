//! The publish script: one atomic step that assigns a topic's next sequence and appends the
//! event to its stream.
//!
//! Stream entry ids are `{seq}-0`, so an id is its sequence: reading "after sequence K" is
//! `XREAD … {K}-0` and the history after K is `XRANGE … {K+1}-0 +`. Fields: `t` (Redis time in
//! ms, for the age bound), `b` (the encoded event without its id line), `k` (conflation key, if
//! any), `x` (present on the terminal event).

use redis::Value;

/// KEYS: seq, fin, log. ARGV: body, key, terminal, must_exist, seq_in_body, max_len, max_age_ms,
/// idle_ttl_ms, finished_ttl_ms, has_key.
///
/// Returns the sequence (> 0), -1 when the topic is finished, -2 when it must exist and does
/// not.
pub(crate) const PUBLISH: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
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
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local body = ARGV[1]
if ARGV[5] == '1' then
  body = (string.gsub(body, '18446744073709551557', sid))
end
local cmd = {'XADD', KEYS[3]}
if tonumber(ARGV[6]) > 0 then
  cmd[#cmd + 1] = 'MAXLEN'
  cmd[#cmd + 1] = '~'
  cmd[#cmd + 1] = ARGV[6]
end
cmd[#cmd + 1] = id
cmd[#cmd + 1] = 't'
cmd[#cmd + 1] = now
cmd[#cmd + 1] = 'b'
cmd[#cmd + 1] = body
if ARGV[10] == '1' then
  cmd[#cmd + 1] = 'k'
  cmd[#cmd + 1] = ARGV[2]
end
if ARGV[3] == '1' then
  cmd[#cmd + 1] = 'x'
  cmd[#cmd + 1] = '1'
end
redis.call(unpack(cmd))
local max_age = tonumber(ARGV[7])
-- The age bound is checked every 16 publishes (and on the terminal one): cheap, and late by at
-- most 15 events.
if max_age > 0 and (seq % 16 == 1 or ARGV[3] == '1') then
  local cutoff = now - max_age
  for _ = 1, 8 do
    local first = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)[1]
    if first == nil or first[1] == id or tonumber(first[2][2]) >= cutoff then break end
    local drop = nil
    local batch = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 64)
    for _, e in ipairs(batch) do
      if e[1] == id or tonumber(e[2][2]) >= cutoff then break end
      drop = e[1]
    end
    if drop == nil then break end
    redis.call('XTRIM', KEYS[3], 'MINID', string.match(drop, '^(%d+)') .. '-1')
  end
end
if ARGV[3] == '1' then
  local ttl = tonumber(ARGV[9])
  redis.call('SET', KEYS[2], sid, 'PX', ttl)
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
elseif tonumber(ARGV[8]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[8])
  redis.call('PEXPIRE', KEYS[3], ARGV[8])
end
return seq
"#;

/// One stream entry, parsed.
#[derive(Debug)]
pub(crate) struct RawEntry {
    pub(crate) seq: u64,
    pub(crate) body: Vec<u8>,
    pub(crate) key: Option<String>,
    pub(crate) terminal: bool,
}

impl RawEntry {
    pub(crate) fn injected(&self) -> sse_core::hub::Injected<'_> {
        sse_core::hub::Injected {
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
    };
    let mut it = fields.into_iter();
    while let (Some(f), Some(v)) = (it.next(), it.next()) {
        let f = bytes(f)?;
        match &f[..] {
            b"b" => entry.body = bytes(v)?,
            b"k" => entry.key = Some(String::from_utf8(bytes(v)?).ok()?),
            b"x" => entry.terminal = true,
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
