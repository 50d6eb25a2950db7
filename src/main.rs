//! The `dosa` binary: a thin shell over [`dosa::cli`].

fn main() {
    std::process::exit(dosa::cli::main());
}
