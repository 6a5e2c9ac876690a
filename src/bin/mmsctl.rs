//! `mmsctl`: the admin CLI, one subcommand per vendor cmdlet. See `mms-cli`.
fn main() -> std::process::ExitCode {
    mms_cli::mmsctl_main()
}
