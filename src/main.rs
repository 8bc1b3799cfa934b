//! The `thumbgen` binary: everything lives in the library; see `thumbgen --help`.

fn main() -> std::process::ExitCode {
    thumbgen::cli::main()
}
