pub fn run(_a: &crate::cli::BenchArgs) -> Result<u8, crate::Failure> {
    Err(crate::Failure::input("bench: not yet"))
}
