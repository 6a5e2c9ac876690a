//! `mms`: the service binary (worker, api, all) and its support commands. See `mms-cli`.
fn main() -> std::process::ExitCode {
    mms_cli::mms_main()
}
