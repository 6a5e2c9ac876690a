//! Entry points of the `mms` and `mmsctl` binaries.
//!
//! `mms` runs the service in one of its roles (`worker`, `api`, `all`) and carries support
//! commands (`ics rewrite`, `status`, `loadgen`); `mmsctl` is the admin CLI over the HTTP API,
//! one subcommand per vendor cmdlet (see [`ctl`]).

pub mod config;
pub mod ctl;
pub mod demo;
pub mod ics;
pub mod loadgen;
pub mod service;
pub mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "mms",
    version,
    about = "Meeting Migration Service: the service and its support commands"
)]
pub struct Mms {
    /// Configuration file (TOML); `MMS_*` environment variables override it.
    #[arg(long, global = true, env = "MMS_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: MmsCommand,
}

#[derive(Subcommand, Debug)]
pub enum MmsCommand {
    /// A worker: pulls migration requests from Redis and migrates mailboxes.
    Worker,
    /// The HTTP API (control plane) alone.
    Api,
    /// Worker and API in one process; `--demo` seeds a demo tenant and migrates it.
    All {
        #[arg(long)]
        demo: bool,
    },
    /// iCalendar support commands.
    Ics {
        #[command(subcommand)]
        command: IcsCommand,
    },
    /// Print the migration status of a user, or the summary, straight from Redis.
    Status(status::StatusArgs),
    /// Build large mailboxes in the embedded store, migrate them with in-process workers, and
    /// write the measured figures to a results file (D8).
    Loadgen(loadgen::LoadgenArgs),
}

#[derive(Subcommand, Debug)]
pub enum IcsCommand {
    /// Rewrite the online-meeting block of one .ics read on stdin; the result goes to stdout.
    Rewrite(ics::IcsRewriteArgs),
}

pub fn mms_main() -> ExitCode {
    let cli = Mms::parse();
    if let MmsCommand::Ics {
        command: IcsCommand::Rewrite(args),
    } = &cli.command
    {
        let code = ics::run_rewrite(
            args,
            &mut std::io::stdin().lock(),
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        );
        return ExitCode::from(code);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        let config = service::load_config(cli.config.as_deref())?;
        service::init_tracing(&config.log);
        match cli.command {
            MmsCommand::Worker => {
                service::run(
                    config,
                    service::Roles {
                        worker: true,
                        api: false,
                        demo: false,
                    },
                )
                .await
            }
            MmsCommand::Api => {
                service::run(
                    config,
                    service::Roles {
                        worker: false,
                        api: true,
                        demo: false,
                    },
                )
                .await
            }
            MmsCommand::All { demo } => {
                service::run(
                    config,
                    service::Roles {
                        worker: true,
                        api: true,
                        demo,
                    },
                )
                .await
            }
            MmsCommand::Status(args) => status::run(config, args).await,
            MmsCommand::Loadgen(args) => loadgen::run(config, args).await,
            MmsCommand::Ics { .. } => unreachable!("handled before the runtime starts"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

pub fn mmsctl_main() -> ExitCode {
    ctl::main()
}
