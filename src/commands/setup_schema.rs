//! `qbench setup-schema`: create (idempotently) what each design needs.

use anyhow::{Context, Result};

use crate::cli::SetupSchemaArgs;
use crate::error::Interrupted;
use crate::queue::{self, QueueKind};
use crate::Ctx;

pub async fn run(ctx: &Ctx, args: &SetupSchemaArgs) -> Result<()> {
    let kinds = QueueKind::parse_list(&args.queue)?;
    for kind in kinds {
        let work = async {
            let q = queue::open(kind, &ctx.cfg).await?;
            q.setup(args.reset)
                .await
                .with_context(|| format!("setting up {kind}"))
        };
        let line = tokio::select! {
            r = work => r?,
            _ = ctx.shutdown.cancelled() => return Err(Interrupted.into()),
        };
        println!("{kind}: {line}");
    }
    Ok(())
}
