//! One file per subcommand; each takes the shared [`crate::Ctx`].

pub mod local_servers;
pub mod setup_schema;
pub mod show_config;
