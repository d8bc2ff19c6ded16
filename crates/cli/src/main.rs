//! `canary-router`: check, explain and simulate configs with the same
//! decision code the filter runs, print the config's JSON Schema,
//! translate ingress-nginx canary annotations, and show a running fleet's
//! rollout state.
//!
//! Exit codes: 0 success; 1 the config (or Ingress) is invalid; 2 the
//! command could not run (usage, unreadable file, bad argument, no
//! endpoint answered); `status`: 3 progressing, 4 rolled back.
#![forbid(unsafe_code)]

mod check;
mod explain;
mod from_nginx;
mod hints;
mod http_get;
mod input;
mod rehearse;
mod schema;
mod simulate;
mod status;
mod yaml_locate;

use std::path::PathBuf;
use std::process::ExitCode;

use canary_router_core::routing::split::Live;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "canary-router",
    version,
    about = "Check, explain, simulate and convert canary-router configs, print their schema, show a fleet's status"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate configs exactly as the filter does; print what each route,
    /// split and mirror does, or the error; warn (exit 0) about what is
    /// valid but likely not meant.
    Check {
        /// JSON configs; YAML with WasmPlugins (also in a `kind: List`),
        /// Envoy ECDS resources or bootstraps; directories; `-` for stdin.
        #[arg(required = true)]
        configs: Vec<PathBuf>,
    },
    /// Show how the filter would route one request: route, rule, the
    /// conditions tested, the target and the header it sets.
    Explain {
        /// A file holding one config, in any form `check` reads.
        config: PathBuf,
        /// A request header, `name: value` (repeatable).
        #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// A cookie, `name=value` (repeatable).
        #[arg(long = "cookie", value_name = "NAME=VALUE")]
        cookies: Vec<String>,
        /// The request URL: host, path and query.
        #[arg(long, default_value = "http://localhost/")]
        url: String,
        #[command(flatten)]
        when: When,
    },
    /// Send synthetic requests (no headers, cookies or query) through every
    /// route and print the share each target gets; or, with --rollout,
    /// rehearse a rollout on synthetic traffic with the judge the filter
    /// runs and print its timeline.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["config", "rollout"])))]
    Simulate {
        config: Option<PathBuf>,
        /// Requests per route.
        #[arg(long, default_value_t = 10_000, conflicts_with = "rollout")]
        requests: u32,
        /// Also assign this many distinct sticky ids on routes with sticky splits.
        #[arg(long, conflicts_with = "rollout")]
        sticky_ids: Option<u32>,
        /// With --sticky-ids: count the ids that change target under this other config.
        #[arg(long, value_name = "OTHER_CONFIG", requires = "sticky_ids")]
        compare: Option<PathBuf>,
        #[command(flatten)]
        when: When,
        /// Rehearse this config's rollout (its first split with a rollback
        /// or ramp) on the traffic of --traffic.
        #[arg(long, value_name = "CONFIG", requires = "traffic", conflicts_with = "config")]
        rollout: Option<PathBuf>,
        /// The synthetic traffic: rate, each arm's errors and latency, and
        /// changes in time (docs/cli.md).
        #[arg(long, value_name = "TRAFFIC.json", requires = "rollout")]
        traffic: Option<PathBuf>,
        /// The random seed: the same seed, the same rehearsal.
        #[arg(long, default_value_t = 1, requires = "rollout")]
        seed: u64,
        /// With --rollout: print JSON.
        #[arg(long, requires = "rollout")]
        json: bool,
    },
    /// Print the JSON Schema (draft 2020-12) of the config.
    Schema,
    /// Translate ingress-nginx canary Ingresses (a main and a canary one)
    /// into a config; what cannot be carried over is reported on stderr.
    FromNginx {
        /// YAML files holding the Ingress objects.
        #[arg(required = true)]
        ingresses: Vec<PathBuf>,
        /// What to write: the filter's JSON, or everything a home needs
        /// for the canaries to route (its routing objects and the plugin,
        /// or an Envoy bootstrap).
        #[arg(long = "to", value_enum, default_value = "json")]
        to: from_nginx::Home,
        /// Where the plugin objects load the filter from: the OCI image
        /// `make oci` pushes (`oci://REGISTRY/IMAGE:TAG`), or an
        /// `https://` URL of the .wasm. Default: a placeholder.
        #[arg(long, value_name = "URL")]
        image: Option<String>,
        /// Its digest, 64 hex digits, as `make oci` (or `sha256sum` of the
        /// .wasm) prints it. Default: a placeholder `check` warns about.
        #[arg(long, value_name = "HEX")]
        sha256: Option<String>,
        /// With `--to envoy`: the .wasm's path on the proxy's host. Default:
        /// where `make build` writes it, relative to Envoy's directory.
        #[arg(long, value_name = "PATH")]
        wasm: Option<String>,
        /// With `--to istio` or `istio-gateway-api`: which object loads the
        /// filter.
        #[arg(long = "istio-plugin", value_enum, default_value = "wasm-plugin")]
        istio_plugin: from_nginx::IstioPlugin,
    },
    /// Show each split's rollout state as running proxies report it:
    /// configured and live weights, ramp step, rollback state and reason,
    /// traffic, and how many proxies agree. Exit 0 healthy, 3 progressing,
    /// 4 rolled back, 2 when no endpoint answered.
    Status {
        /// An Envoy admin endpoint, `http://HOST:PORT` (repeatable).
        #[arg(long = "admin", value_name = "URL")]
        admin: Vec<String>,
        /// A Prometheus that scrapes the proxies: `http://HOST:PORT`, or
        /// `https://`, with the path its API is served under if any
        /// (`https://thanos.example.com/prometheus`).
        #[arg(long, value_name = "URL")]
        prometheus: Option<String>,
        /// A PEM file of the CA that signed an HTTPS endpoint's certificate
        /// (default: Mozilla's roots).
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
        /// A file holding Prometheus's bearer token (or set
        /// CANARY_ROUTER_PROMETHEUS_TOKEN).
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// A file holding Prometheus's `user:password` for basic auth (or set
        /// CANARY_ROUTER_PROMETHEUS_BASIC_AUTH).
        #[arg(long, value_name = "FILE")]
        basic_auth_file: Option<PathBuf>,
        /// Redraw every 2 seconds until interrupted.
        #[arg(long)]
        watch: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// With --admin: seconds between the two reads rates come from.
        #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
        interval: f64,
    },
}

/// The state a decision depends on besides the request.
#[derive(clap::Args, Clone)]
pub struct When {
    /// Evaluate ramps at this RFC 3339 time instead of now.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Treat every split that has a `rollback` as rolled back.
    #[arg(long)]
    rolled_back: bool,
}

impl When {
    /// Milliseconds since the epoch of `--at`, or of now.
    pub fn now_ms(&self) -> Result<u64, Failure> {
        match &self.at {
            Some(at) => canary_router_core::text::time::parse_rfc3339(at)
                .map_err(|e| Failure::Usage(format!("--at: {e}"))),
            None => Ok(std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)),
        }
    }

    /// Per split id: its live state (every split rolled back, or none).
    pub fn live(&self, split_count: usize) -> Vec<Live> {
        vec![Live { withheld: self.rolled_back, gated_step: None }; split_count]
    }
}

/// A failure: invalid input (exit 1) or a command that could not run (exit 2).
pub enum Failure {
    Invalid(String),
    Usage(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { configs } => check::run(&configs),
        Command::Explain { config, headers, cookies, url, when } => {
            explain::run(&config, &headers, &cookies, &url, &when)
        }
        Command::Simulate { config, requests, sticky_ids, compare, when, rollout, traffic, seed, json } => {
            match (config, rollout, traffic) {
                (_, Some(rollout), Some(traffic)) => rehearse::run(&rollout, &traffic, seed, json),
                (Some(config), _, _) => {
                    simulate::run(&config, requests, sticky_ids, compare.as_deref(), &when)
                }
                _ => Err(Failure::Usage(
                    "simulate needs a CONFIG, or --rollout CONFIG --traffic TRAFFIC.json".into(),
                )),
            }
        }
        Command::Schema => {
            println!("{}", schema::pretty());
            Ok(())
        }
        Command::FromNginx { ingresses, to, image, sha256, wasm, istio_plugin } => {
            from_nginx::run(&ingresses, to, &from_nginx::Options { image, sha256, wasm, istio_plugin })
        }
        Command::Status {
            admin,
            prometheus,
            ca_file,
            token_file,
            basic_auth_file,
            watch,
            json,
            interval,
        } => {
            let options = status::Options {
                admin,
                prometheus,
                watch,
                json,
                interval,
                ca_file,
                token_file,
                basic_auth_file,
            };
            match status::run(&options) {
                Ok(code) => return ExitCode::from(code),
                Err(failure) => Err(failure),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Invalid(message)) => {
            eprintln!("canary-router: {message}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(message)) => {
            eprintln!("canary-router: {message}");
            ExitCode::from(2)
        }
    }
}
