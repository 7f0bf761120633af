//! The command line: clap's raw arguments ([`args`]), their resolution into
//! typed configs ([`resolve`]), and the one place layer errors become a line
//! and an exit code ([`failure`]).

pub mod args;
pub mod failure;
pub mod panic;
pub mod resolve;

pub use args::{Cli, Cmd};
pub use failure::{Failure, exit};
