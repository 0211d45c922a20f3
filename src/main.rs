//! The qbench binary: everything lives in the library so tests can drive it in-process.

fn main() -> std::process::ExitCode {
    qbench::main_entry()
}
