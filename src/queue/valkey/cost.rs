//! The counters `qbench cost` reads from Valkey's INFO: commands and append-only file
//! bytes.

use crate::format::cost::Counters;

/// From INFO commandstats and INFO persistence. The readings' own INFO calls are left
/// out; with no append-only file (the volatile tier) its bytes are unknown.
pub fn counters(commandstats: &str, persistence: &str) -> Counters {
    let calls = commandstats
        .lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter(|l| !l.starts_with("info:"))
        .filter_map(|l| {
            let fields = l.split_once(':')?.1;
            fields
                .split(',')
                .find_map(|f| f.strip_prefix("calls="))?
                .parse::<u64>()
                .ok()
        })
        .sum();
    let aof = super::cluster::info_value(persistence, "aof_enabled") == Some("1");
    let mut out = Counters {
        statements: Some(calls),
        ..Counters::default()
    };
    match aof {
        true => {
            out.log_bytes = super::cluster::info_value(persistence, "aof_current_size")
                .and_then(|v| v.parse().ok())
        }
        false => out
            .missing
            .push("no append-only file: nothing is logged in this tier".into()),
    }
    out.missing.push(
        "Valkey has no transactions, dead tuples or buffers to count; a script and each command it calls count as commands".into(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_summed_without_info_and_the_aof_size_read() {
        let stats = "# Commandstats\r\ncmdstat_xadd:calls=10,usec=50,usec_per_call=5.00\r\n\
                     cmdstat_info:calls=7,usec=1,usec_per_call=0.1\r\n\
                     cmdstat_evalsha:calls=3,usec=9,usec_per_call=3.00\r\n";
        let c = counters(stats, "aof_enabled:1\r\naof_current_size:4096\r\n");
        assert_eq!((c.statements, c.log_bytes), (Some(13), Some(4096)));
        let c = counters(stats, "aof_enabled:0\r\n");
        assert_eq!(c.log_bytes, None);
        assert!(c.missing[0].contains("append-only"));
    }
}
