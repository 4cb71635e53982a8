//! The `codegen-sentinel` binary: parse the command line, start logging, hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use codegen_sentinel::cli::{self, Cli};

/// mimalloc rather than the system allocator: webhook payloads and their parsed JSON are many
/// short-lived allocations across threads, where glibc's malloc spends a quarter of the
/// receiver's CPU and keeps freed memory in per-thread arenas (see docs/webhooks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_tracing(cli.log_format, cli.default_log_level());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: could not start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure:#}");
            failure.exit_code()
        }
    }
}
