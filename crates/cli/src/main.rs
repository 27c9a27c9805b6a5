//! The `cubby` binary: argument parsing and wiring only.
//!
//! `cubby serve` runs the server; `cubby admin …` (in `admin.rs`) are operator commands that
//! work on the same data folder whether or not the server is running (SQLite's WAL lets both
//! write); the client commands (`login`, `ls`, `put`, …, in `client.rs`) talk to a server over
//! its API through the `cubby-client` crate.

mod admin;
mod backup;
mod client;
mod folders;
mod import;
mod login;
mod profile;
mod progress;
mod put_tree;
mod sync;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cubby",
    version,
    about = "Self-hosted file storage that speaks the Dropbox API v2"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Operator commands on the data folder.
    Admin {
        #[command(flatten)]
        store: StoreArgs,
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    #[command(flatten)]
    Client(client::ClientCommand),
}

/// Where the server's data lives: options of `serve` and `admin` only (a client command
/// has no store).
#[derive(Args)]
struct StoreArgs {
    /// Data folder: SQLite metadata, blocks and TLS material.
    #[arg(long, global = true, env = "CUBBY_DATA", default_value = "cubby-data")]
    data: PathBuf,
    /// Metadata back-end: postgres://… for scale-out (default: SQLite in the data folder).
    #[arg(long, global = true, env = "CUBBY_METADATA")]
    metadata: Option<String>,
    /// Block back-end: s3://bucket[/prefix][?endpoint=URL&region=R] for scale-out (default:
    /// the data folder). Credentials come from the AWS_* environment variables.
    #[arg(long, global = true, env = "CUBBY_BLOCKS")]
    blocks: Option<String>,
    /// Accept --metadata without --blocks, or --blocks without --metadata (one server only:
    /// the other half stays in this machine's data folder).
    #[arg(long, global = true, env = "CUBBY_MIXED_BACKENDS")]
    mixed_backends: bool,
}

impl StoreArgs {
    /// The store configuration, refusing half a scale-out set-up unless it is meant: with
    /// --metadata alone, servers sharing the database list files whose bytes sit on another
    /// machine's disk.
    fn config(self) -> Result<cubby_store::StoreConfig> {
        let (meta, blocks) = (self.metadata.is_some(), self.blocks.is_some());
        if meta != blocks && !self.mixed_backends {
            let (given, missing, example) = if meta {
                ("--metadata", "--blocks", "--blocks s3://bucket")
            } else {
                ("--blocks", "--metadata", "--metadata postgres://host/db")
            };
            bail!(
                "{given} is set but {missing} is not, so the other half would stay in the data \
                 folder {} on this machine, where other servers cannot reach it. Give both \
                 (e.g. {example}) for scale-out, neither for the embedded store, or add \
                 --mixed-backends (CUBBY_MIXED_BACKENDS=1) if one server is meant to use this mix.",
                self.data.display()
            );
        }
        Ok(self.unchecked())
    }

    fn unchecked(self) -> cubby_store::StoreConfig {
        cubby_store::StoreConfig {
            data_dir: self.data,
            metadata_url: self.metadata,
            blocks_url: self.blocks,
        }
    }
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Plain-HTTP address, or "off".
    #[arg(long, env = "CUBBY_HTTP", default_value = "127.0.0.1:8080")]
    http: String,
    /// HTTPS address, or "off".
    #[arg(long, env = "CUBBY_HTTPS", default_value = "127.0.0.1:8443")]
    https: String,
    /// PEM certificate chain to serve instead of the local CA's certificate.
    #[arg(long, env = "CUBBY_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key matching --tls-cert.
    #[arg(long, env = "CUBBY_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Days of history (old revisions and deleted files) to keep; by default all is kept.
    #[arg(long, env = "CUBBY_RETENTION_DAYS")]
    retention_days: Option<u32>,
    /// A network save_url may fetch from besides the public internet, e.g. 10.0.0.0/8
    /// (repeatable; the environment variable takes a comma-separated list).
    #[arg(long = "fetch-allow", env = "CUBBY_FETCH_ALLOW", value_delimiter = ',')]
    fetch_allow: Vec<String>,
    /// One log line per request (method, route, status, bytes, duration, request id,
    /// account): "on" or "off".
    #[arg(long, env = "CUBBY_ACCESS_LOG", default_value = "on", value_parser = ["on", "off"])]
    access_log: String,
}

fn main() -> Result<()> {
    // Both rustls back-ends must never be enabled at once; pin the process to aws-lc-rs.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CUBBY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file (systemd, `2>server.log`) gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match runtime.block_on(run(cli)) {
        Ok(()) => Ok(()),
        Err(e) => match e.downcast_ref::<client::Failure>() {
            Some(f) => {
                eprintln!("cubby: {f}");
                std::process::exit(f.code);
            }
            None => Err(e),
        },
    }
}

/// Output piped into a reader that stops early (`cubby ls -r / | head`) ends the process as a
/// shell expects of such a writer, quietly with status 141 (killed by SIGPIPE), instead of a
/// panic and its backtrace: Rust ignores SIGPIPE, so `println!` panics on the closed pipe,
/// and restoring the signal's default takes `unsafe`.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        // Migrate reads the embedded store and takes its target as --to and --blocks.
        Command::Admin {
            store,
            command: admin::AdminCommand::Migrate(args),
        } => admin::migrate(store.unchecked(), args).await,
        Command::Admin { store, command } => admin::run(store.config()?, command).await,
        Command::Client(command) => client::run(command).await,
    }
}

fn parse_listen(s: &str, flag: &str) -> Result<Option<SocketAddr>> {
    if s == "off" {
        return Ok(None);
    }
    Ok(Some(s.parse().with_context(|| {
        format!("{flag}: '{s}' is not an address like 127.0.0.1:8080")
    })?))
}

async fn serve(args: ServeArgs) -> Result<()> {
    let store = args.store.config()?;
    let data = store.data_dir.clone();
    let config = cubby_server::Config {
        data: data.clone(),
        metadata_url: store.metadata_url.clone(),
        blocks_url: store.blocks_url.clone(),
        retention_days: args.retention_days,
        fetch_allow: args.fetch_allow,
        access_log: args.access_log == "on",
        limits: cubby_server::conn::Limits::default(),
        http: parse_listen(&args.http, "--http")?,
        https: parse_listen(&args.https, "--https")?,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
    };
    if config.http.is_none() && config.https.is_none() {
        bail!("both --http and --https are off: nothing to serve");
    }
    let server = cubby_server::Server::bind(&config)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("starting the server")?;
    println!(
        "cubby {} serving metadata {}, blocks {}",
        env!("CARGO_PKG_VERSION"),
        store
            .metadata_url
            .as_deref()
            .map(redact_url)
            .unwrap_or_else(|| data.join("meta.sqlite").display().to_string()),
        store
            .blocks_url
            .clone()
            .unwrap_or_else(|| data.join("blocks").display().to_string()),
    );
    if let Some(a) = server.http_addr {
        println!("  http:  http://{a}");
    }
    if let Some(a) = server.https_addr {
        println!("  https: https://localhost:{}", a.port());
        if let Some(ca) = &server.ca_file {
            let ca = std::path::absolute(ca).unwrap_or(ca.clone());
            println!("  CA certificate: {}", ca.display());
        }
        println!("  For the official Dropbox SDKs (Python: Dropbox(token, ca_certs=<CA file>)):");
        for var in [
            "DROPBOX_API_HOST",
            "DROPBOX_API_CONTENT_HOST",
            "DROPBOX_API_NOTIFY_HOST",
            "DROPBOX_WEB_HOST",
        ] {
            println!("    export {var}=localhost:{}", a.port());
        }
    }
    println!("  create a user: cubby admin user add NAME; a token: cubby admin token NAME");
    // The web app, where a person signs in: the HTTPS address if there is one.
    match (server.https_addr, server.http_addr) {
        (Some(a), _) => println!("  in a browser: https://localhost:{}/", a.port()),
        (None, Some(a)) => println!("  in a browser: http://{a}/"),
        (None, None) => {}
    }
    if let (Some(a), Some(ca)) = (server.https_addr, &server.ca_file) {
        let ca = std::path::absolute(ca).unwrap_or(ca.clone());
        println!(
            "  sign in from the client: cubby login https://localhost:{} --ca-cert {}",
            a.port(),
            ca.display()
        );
    } else if let Some(a) = server.http_addr {
        println!("  sign in from the client: cubby login http://{a}");
    }
    server
        .serve(shutdown_signal())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Hides the password of a database URL before printing it.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s && url[s + 3..at].contains(':') => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn only_a_password_is_hidden() {
        assert_eq!(
            redact_url("postgres://cubby:s3cret@db/cubby"),
            "postgres://cubby:***@db/cubby"
        );
        assert_eq!(
            redact_url("postgres://cubby@db/cubby"),
            "postgres://cubby@db/cubby"
        );
        assert_eq!(redact_url("postgres://db/cubby"), "postgres://db/cubby");
    }
}
