//! `cargo seed`: parse, dispatch, print the error, exit.

fn main() -> std::process::ExitCode {
    cargo_seed::cli::main()
}
