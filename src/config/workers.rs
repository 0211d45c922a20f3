//! `benchmark.num_workers`: one worker count, or (`sweep` only) a list of them, each
//! measured by its own burn-down for the worker-scaling fit.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::UsageError;

/// The most workers one process runs (each holds a connection).
pub const MAX_WORKERS: u32 = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workers(Vec<u32>);

impl Workers {
    pub fn one(n: u32) -> Workers {
        Workers(vec![n])
    }

    /// The worker count. Every command but `sweep` is refused a list before it runs
    /// ([`Workers::single`]), so this is the only count there is; a list's first.
    pub fn get(&self) -> u32 {
        self.0[0]
    }

    pub fn counts(&self) -> &[u32] {
        &self.0
    }

    pub fn is_list(&self) -> bool {
        self.0.len() > 1
    }

    /// The count of a command that runs one; a list is refused, naming the flag.
    pub fn single(&self) -> Result<u32, UsageError> {
        match self.0[..] {
            [n] => Ok(n),
            _ => Err(UsageError::new(format!(
                "--workers {self}: this command runs one worker count; only `sweep` takes a list (worker scaling)"
            ))),
        }
    }

    /// Each count's range; the message names the key.
    pub fn check(&self, key: &str) -> Result<(), UsageError> {
        for &n in &self.0 {
            super::benchmark::in_range(key, n, 1, MAX_WORKERS)?;
        }
        Ok(())
    }
}

impl From<u32> for Workers {
    fn from(n: u32) -> Workers {
        Workers::one(n)
    }
}

impl PartialEq<u32> for Workers {
    fn eq(&self, other: &u32) -> bool {
        self.0 == [*other]
    }
}

impl FromStr for Workers {
    type Err = String;
    fn from_str(s: &str) -> Result<Workers, String> {
        let mut out = vec![];
        for part in s.split(',').map(str::trim) {
            let n: u32 = part.parse().map_err(|_| {
                format!("{part:?} is not a whole number of workers (a list is 1,2,4,8)")
            })?;
            if !out.contains(&n) {
                out.push(n);
            }
        }
        out.sort_unstable();
        Ok(Workers(out))
    }
}

impl fmt::Display for Workers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

/// One count is written as a number, as the seed's files have it; a list as "1,2,4".
impl Serialize for Workers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0[..] {
            [n] => s.serialize_u32(n),
            _ => s.serialize_str(&self.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Workers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Workers, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Workers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of workers, or (sweep) a list such as \"1,2,4,8\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Workers, E> {
                u32::try_from(v)
                    .map(Workers::one)
                    .map_err(|_| E::custom(format!("{v} workers is out of range")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Workers, E> {
                u32::try_from(v)
                    .map(Workers::one)
                    .map_err(|_| E::custom(format!("{v} workers is out of range")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Workers, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_count_or_a_sorted_list() {
        assert_eq!("20".parse::<Workers>().expect("one"), 20);
        let list: Workers = "8, 1,2,4,2".parse().expect("list");
        assert_eq!(list.counts(), &[1, 2, 4, 8]);
        assert!(list.single().is_err());
        assert!("1,,2".parse::<Workers>().is_err());
        assert!("x".parse::<Workers>().is_err());
        assert!("-1".parse::<Workers>().is_err());
        assert!(Workers::one(0).check("k").is_err());
        assert_eq!(serde_json::to_string(&Workers::one(4)).expect("json"), "4");
        assert_eq!(serde_json::to_string(&list).expect("json"), "\"1,2,4,8\"");
    }
}
