//! Entry points of the `mms` and `mmsctl` binaries.
pub fn mms_main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
pub fn mmsctl_main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
