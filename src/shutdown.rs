//! Ctrl-C, SIGTERM and SIGHUP become one cancellation that every long task watches.
//! A second signal exits at once; servers qbench started die with it (PDEATHSIG).

use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    /// A handle no signal reaches (tests, and commands driven by a caller).
    pub fn manual() -> Shutdown {
        Shutdown::default()
    }

    /// Listens for SIGINT, SIGTERM and SIGHUP.
    pub fn install() -> Shutdown {
        let s = Shutdown::manual();
        let token = s.token.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) else {
                return;
            };
            for n in 0.. {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                    _ = hup.recv() => {}
                }
                if n == 0 {
                    eprintln!("\nqbench: stopping: finishing jobs in hand and writing results (signal again to quit at once)");
                    token.cancel();
                } else {
                    eprintln!(
                        "\nqbench: quitting at once; results of the running test are incomplete"
                    );
                    std::process::exit(i32::from(crate::error::EXIT_INTERRUPTED));
                }
            }
        });
        s
    }

    pub fn trigger(&self) {
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }

    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }
}
