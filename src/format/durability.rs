//! What a server crash can take with it: the settings a test read from its server, and
//! the tier they amount to. The manifest stores the settings as text
//! (`fsync=on synchronous_commit=on`, `appendonly="no" appendfsync="everysec" save=""`);
//! this is the one place that writes and reads that text.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How much acknowledged work a crash of the server can lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Everything the server held (no log, or a log that is thrown away).
    Volatile,
    /// The last moments of acknowledged work (a log written, but not synced per commit).
    Relaxed,
    /// Nothing acknowledged (every commit synced before it is acknowledged).
    Strict,
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Tier::Volatile => "volatile",
            Tier::Relaxed => "relaxed",
            Tier::Strict => "strict",
        }
    }
}

/// A server's durability settings, as read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Durability {
    Postgres {
        fsync: String,
        synchronous_commit: String,
    },
    Valkey {
        appendonly: String,
        appendfsync: String,
        save: String,
    },
}

impl Durability {
    pub fn tier(&self) -> Tier {
        match self {
            Durability::Postgres {
                fsync,
                synchronous_commit,
            } => {
                if fsync != "on" {
                    Tier::Volatile
                } else if synchronous_commit == "off" {
                    Tier::Relaxed
                } else {
                    Tier::Strict
                }
            }
            Durability::Valkey {
                appendonly,
                appendfsync,
                ..
            } => match (appendonly.as_str(), appendfsync.as_str()) {
                ("yes", "always") => Tier::Strict,
                ("yes", _) => Tier::Relaxed,
                // RDB snapshots alone lose everything since the last save.
                _ => Tier::Volatile,
            },
        }
    }

    /// Reads the text a manifest stores; `None` for anything else.
    pub fn parse(text: &str) -> Option<Durability> {
        let pairs = pairs(text)?;
        let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        if let (Some(fsync), Some(synchronous_commit)) = (get("fsync"), get("synchronous_commit")) {
            return Some(Durability::Postgres {
                fsync,
                synchronous_commit,
            });
        }
        Some(Durability::Valkey {
            appendonly: get("appendonly")?,
            appendfsync: get("appendfsync")?,
            save: get("save")?,
        })
    }
}

/// `k=v k="quoted \"value\""` pairs; `None` if the text is not of that form.
fn pairs(text: &str) -> Option<Vec<(String, String)>> {
    let mut out = vec![];
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => v.push(chars.next()?.1),
                    (_, c) => v.push(c),
                }
            };
            (v, &q[end + 1..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        out.push((key.trim().to_string(), value));
        rest = tail.trim_start();
    }
    Some(out)
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Durability::Postgres {
                fsync,
                synchronous_commit,
            } => write!(f, "fsync={fsync} synchronous_commit={synchronous_commit}"),
            Durability::Valkey {
                appendonly,
                appendfsync,
                save,
            } => write!(
                f,
                "appendonly={appendonly:?} appendfsync={appendfsync:?} save={save:?}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_round_trips_and_names_the_tier() {
        for (text, tier) in [
            ("fsync=on synchronous_commit=on", Tier::Strict),
            ("fsync=on synchronous_commit=off", Tier::Relaxed),
            ("fsync=off synchronous_commit=on", Tier::Volatile),
            (
                r#"appendonly="no" appendfsync="everysec" save="""#,
                Tier::Volatile,
            ),
            (
                r#"appendonly="yes" appendfsync="everysec" save="""#,
                Tier::Relaxed,
            ),
            (
                r#"appendonly="yes" appendfsync="always" save="3600 1""#,
                Tier::Strict,
            ),
        ] {
            let d = Durability::parse(text).expect(text);
            assert_eq!(d.tier(), tier, "{text}");
            assert_eq!(d.to_string(), text);
        }
        assert!(Durability::parse("").is_none());
        assert!(Durability::parse("something=else").is_none());
    }
}
