//! oomsim as a library: the binary (`main.rs`) is its command line, and the
//! fuzz targets under `fuzz/` reach the parsers of user input through it.
//! The data flows one way: YAML -> Plan -> Run (cgroups, children,
//! monitors) -> Events -> Verdict -> Report -> Plots.

mod bounded;
mod cgroup;
pub mod cli;
pub mod commands;
mod compare;
pub mod diagnose;
mod fault;
mod gpu;
mod host;
mod html;
pub mod jobs;
pub mod k8s;
pub mod llm;
mod monitor;
mod plan;
mod plot;
mod recommend;
pub mod report;
mod run;
mod runtime;
mod scan;
pub mod scenario;
pub mod search;
mod signals;
pub mod template;
pub mod units;
mod verdict;
mod workload;
