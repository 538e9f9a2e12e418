//! The `reconlight` binary.

use clap::Parser;

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
            tracing_subscriber::EnvFilter::try_from_env("RECONLIGHT_LOG")
                .unwrap_or_else(|_| "reconlight=error,warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = reconlight::cli::Cli::parse();
    if let Err(e) = reconlight::cli::run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
