//! The `codegen-sentinel` binary: parse the command line, start logging, hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use codegen_sentinel::cli::{self, Cli};

fn main() -> ExitCode {
    codegen_sentinel::memory::tune_malloc();
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
