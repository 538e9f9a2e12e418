//! The `reconlight` binary: `args` holds the command line's words, `commands` what each
//! command does (over `reconlight-service`), `output` what they print.

use clap::Parser;

mod args;
mod commands;
mod output;

// Decoding and the live tables allocate many small objects; mimalloc does that faster than
// the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    // Like any Unix filter: `reconlight decode ... | head` ends quietly when head is done.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread writes.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RECONLIGHT_LOG").unwrap_or_else(|_| {
                // The pipeline reports bad input as dead letters and in its summary;
                // its per-record warnings are for RECONLIGHT_LOG=reconlight_service=warn.
                "reconlight_service=error,reconlight_core=error,warn".into()
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = args::Cli::parse();
    if let Err(e) = commands::run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
