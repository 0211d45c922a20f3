//! Whether the queue's server provides the durability tier asked for: the same tier on
//! both sides is what makes PostgreSQL and Valkey comparable.

use std::sync::Arc;

use anyhow::Result;

use crate::config::DurabilityChoice;
use crate::queue::Queue;

/// Reads the server's settings after setup. A gap is refused with one line naming the
/// setting and how to change it, or, with `accept`, returned as a warning (the tier it
/// really ran in is recorded in the manifest either way).
pub async fn check(
    queue: &Arc<dyn Queue>,
    choice: DurabilityChoice,
    accept: bool,
) -> Result<Option<String>> {
    let want = queue.kind().backend().tier(choice);
    let info = queue.server().info().await?;
    let gap = match &info.durability {
        Some(d) => d.gap(want),
        None => Some(format!(
            "the server's persistence settings cannot be read (CONFIG is disabled on it): the {} tier cannot be verified",
            want.name()
        )),
    };
    match gap {
        None => Ok(None),
        Some(g) if accept => Ok(Some(format!(
            "durability mismatch accepted: {g}; the tier it has is recorded, and analyze keeps tiers apart"
        ))),
        Some(g) => Err(crate::error::usage(format!(
            "{g}; or pass --accept-durability-mismatch to run in the tier it has"
        ))),
    }
}
