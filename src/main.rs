fn main() -> std::process::ExitCode {
    virtual_window::cli::main()
}
