//! `qbench setup-schema`: create (idempotently) what each design needs.

use anyhow::{Context, Result};

use crate::cli::SetupSchemaArgs;
use crate::error::Interrupted;
use crate::queue::{self, QueueKind};
use crate::session::Session;

pub async fn run(s: &Session, args: &SetupSchemaArgs) -> Result<()> {
    let kinds = QueueKind::parse_list(&args.queue)?;
    for kind in kinds {
        let work = async {
            let q = queue::open(kind, &s.cfg).await?;
            q.setup(args.reset)
                .await
                .with_context(|| format!("setting up {kind}"))
        };
        let line = tokio::select! {
            r = work => r?,
            _ = s.shutdown.cancelled() => return Err(Interrupted.into()),
        };
        println!("{kind}: {line}");
    }
    Ok(())
}
