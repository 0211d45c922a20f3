//! One file per subcommand; each takes the shared [`crate::Ctx`].

pub mod analyze;
pub mod crash_test;
pub mod graph;
pub mod horizon;
pub mod local_servers;
pub mod produce;
pub mod report;
pub mod run_suite;
pub mod setup_schema;
pub mod shell_docs;
pub mod show_config;
pub mod sweep;
pub mod test_setup;
pub mod work;
