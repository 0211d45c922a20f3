//! Reading Valkey's replies: flat key/value maps (RESP2 or RESP3) and XREADGROUP's
//! nested entries.

use anyhow::{bail, Result};
use redis::Value;

use crate::queue::{Claimed, Handle};

pub fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

pub fn as_bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// Looks up `key` in a flat key/value reply (RESP2 array or RESP3 map).
pub fn field_u64(v: &Value, key: &str) -> Option<u64> {
    match v {
        Value::Array(a) => a
            .chunks(2)
            .find(|kv| as_bytes(&kv[0]) == Some(key.as_bytes()))
            .and_then(|kv| kv.get(1))
            .and_then(as_u64),
        Value::Map(m) => m
            .iter()
            .find(|(k, _)| as_bytes(k) == Some(key.as_bytes()))
            .and_then(|(_, v)| as_u64(v)),
        _ => None,
    }
}

/// One entry `[id, [field, value, …]]` of stream number `stream` as a claimed job.
fn entry(e: Value, stream: usize) -> Result<Claimed> {
    let Value::Array(mut idf) = e else {
        bail!("unexpected stream entry")
    };
    let fields = idf.pop();
    let id = match idf.pop() {
        Some(Value::BulkString(id)) => id,
        other => bail!("unexpected stream entry id: {other:?}"),
    };
    let Some(Value::Array(f)) = fields else {
        bail!("stream entry without fields")
    };
    let (mut seq, mut t, mut a, mut len) = (None, None, 0u64, 0usize);
    for kv in f.chunks(2) {
        match (as_bytes(&kv[0]), kv.get(1)) {
            (Some(b"s"), Some(v)) => seq = as_i64(v),
            (Some(b"t"), Some(v)) => t = as_i64(v),
            (Some(b"a"), Some(v)) => a = as_u64(v).unwrap_or(0),
            (Some(b"p"), Some(v)) => len = as_bytes(v).map_or(0, <[u8]>::len),
            _ => {}
        }
    }
    let (Some(seq), Some(t)) = (seq, t) else {
        bail!(
            "stream entry {} is not a qbench job (no s/t fields)",
            String::from_utf8_lossy(&id)
        )
    };
    Ok(Claimed {
        seq,
        enqueued_at_us: t,
        attempts: u32::try_from(a + 1).unwrap_or(u32::MAX),
        payload_len: len,
        handle: Handle::Entry { stream, id },
    })
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => std::str::from_utf8(as_bytes(other)?).ok()?.parse().ok(),
    }
}

/// XREADGROUP's reply from stream number `stream`: nil on timeout, else
/// [[stream, [[id, [field, value, …]], …]]].
pub fn parse_read_reply(reply: Value, stream: usize) -> Result<Vec<Claimed>> {
    let streams = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(a) => a,
        Value::Map(m) => m
            .into_iter()
            .map(|(k, v)| Value::Array(vec![k, v]))
            .collect(),
        other => bail!("unexpected XREADGROUP reply: {other:?}"),
    };
    let mut out = Vec::new();
    for s in streams {
        let Value::Array(mut pair) = s else {
            bail!("unexpected XREADGROUP stream entry")
        };
        let Some(Value::Array(entries)) = pair.pop() else {
            bail!("unexpected XREADGROUP entries")
        };
        for e in entries {
            out.push(entry(e, stream)?);
        }
    }
    Ok(out)
}

/// An entry's id, and its job's (seq, intended enqueue µs).
pub type Entry = (Vec<u8>, (i64, i64));

/// XRANGE's reply, entry by entry.
pub fn entries(reply: Value) -> Result<Vec<Entry>> {
    let Value::Array(list) = reply else {
        bail!("unexpected XRANGE reply: {reply:?}")
    };
    list.into_iter()
        .map(|e| {
            let job = entry(e, 0)?;
            let Handle::Entry { id, .. } = job.handle else {
                bail!("stream entry without an id")
            };
            Ok((id, (job.seq, job.enqueued_at_us)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn parses_a_read_reply() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("q"),
            Value::Array(vec![Value::Array(vec![
                bulk("1-0"),
                Value::Array(vec![
                    bulk("s"),
                    bulk("7"),
                    bulk("t"),
                    bulk("123"),
                    bulk("a"),
                    bulk("1"),
                    bulk("p"),
                    bulk("xyz"),
                ]),
            ])]),
        ])]);
        let jobs = parse_read_reply(reply, 2).expect("parses");
        assert_eq!(jobs.len(), 1);
        assert_eq!((jobs[0].seq, jobs[0].enqueued_at_us), (7, 123));
        assert_eq!(jobs[0].attempts, 2);
        assert_eq!(jobs[0].payload_len, 3);
        assert!(matches!(jobs[0].handle, Handle::Entry { stream: 2, .. }));
        assert!(parse_read_reply(Value::Nil, 0).expect("nil").is_empty());
        assert!(parse_read_reply(Value::Int(3), 0).is_err());
    }
}
